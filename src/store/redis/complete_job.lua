-- Forgets a sent job. A job already gone (erased with its contact) is fine.
-- KEYS: 1 jobs hash, 2 queue zset, 3 dead zset, 4 contact's job ids set. ARGV: 1 job id.

redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
return 1
