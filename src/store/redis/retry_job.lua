-- Stores a failed job's new state and makes it due again, unless it is gone (erased).
-- A dead job only gets its state stored: only an admin revives it.
-- KEYS: 1 jobs hash, 2 queue zset, 3 dead zset. ARGV: 1 job id, 2 job JSON, 3 due ms.
-- Returns 1 when the job was still there.

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
return 1
