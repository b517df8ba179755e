-- Writes one job back as a backup found it: queued at its due time, or dead.
-- KEYS: 1 jobs hash, 2 queue zset, 3 dead zset, 4 the owner's job ids set.
-- ARGV: 1 job id, 2 job JSON, 3 'queued' or 'dead', 4 score (due ms; for a dead job
-- its creation time in ms, the dead letters' order). Returns 1.
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if ARGV[3] == 'dead' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
end
redis.call('SADD', KEYS[4], ARGV[1])
return 1
