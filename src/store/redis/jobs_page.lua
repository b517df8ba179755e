-- One step of a walk over one shard's jobs (a backup's view), each read together with
-- where it stands, in one atomic step.
-- KEYS: 1 jobs hash, 2 queue zset, 3 dead zset. ARGV: 1 HSCAN cursor, 2 count.
-- Returns {next cursor, then per job: id, job JSON, due ms or '', '1' if dead or '0'}.
local scan = redis.call('HSCAN', KEYS[1], ARGV[1], 'COUNT', ARGV[2])
local out = {scan[1]}
local entries = scan[2]
for i = 1, #entries, 2 do
  local id = entries[i]
  local due = redis.call('ZSCORE', KEYS[2], id)
  local dead = redis.call('ZSCORE', KEYS[3], id)
  out[#out + 1] = id
  out[#out + 1] = entries[i + 1]
  out[#out + 1] = due or ''
  out[#out + 1] = dead and '1' or '0'
end
return out
