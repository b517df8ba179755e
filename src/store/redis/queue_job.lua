-- Queues one job that no contact change wrote (a webhook.test delivery).
-- KEYS: 1 jobs hash, 2 queue zset, 3 the owner's job ids set.
-- ARGV: 1 job id, 2 job JSON, 3 due ms. Returns 1.

redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
