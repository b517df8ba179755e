-- Writes one mail allowance back as a backup found it: the times its mails were taken,
-- expiring when the newest leaves the window, as `take_mail_allowance` leaves it.
-- KEYS: 1 the allowance zset. ARGV: 1 expiry (ms since the epoch), then pairs of
-- (time in ms, a member unique within the set). Returns 1.
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return 1
