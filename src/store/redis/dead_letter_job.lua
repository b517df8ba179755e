-- Moves a job from the queue to the dead letters, keeping its latest state.
-- KEYS: 1 jobs hash, 2 queue zset, 3 dead zset. ARGV: 1 job id, 2 job JSON,
--       3 its score among the dead letters (the job's creation time in ms: their order).
-- Returns 1 when the job was still there.

if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
