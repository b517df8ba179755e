-- Takes the earliest job of one shard that is due at ARGV[1] and hides it until
-- ARGV[2] by moving its score there; a worker that dies leaves it to come back.
-- KEYS: 1 queue zset, 2 jobs hash. Returns the job JSON, or nil when none is due.

for _ = 1, 16 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
  if #due == 0 then
    return false
  end
  local job = redis.call('HGET', KEYS[2], due[1])
  if job then
    redis.call('ZADD', KEYS[1], ARGV[2], due[1])
    return job
  end
  -- A queue entry without a body can never be sent; drop it and look further.
  redis.call('ZREM', KEYS[1], due[1])
end
return false
