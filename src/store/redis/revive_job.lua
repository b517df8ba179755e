-- Puts a dead job back in the queue. Returns 0 when it is no longer dead (revived by
-- someone else, or erased with its contact).
-- KEYS: 1 jobs hash, 2 queue zset, 3 dead zset. ARGV: 1 job id, 2 job JSON, 3 due ms.

if redis.call('ZREM', KEYS[3], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
