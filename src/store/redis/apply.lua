-- Writes one ContactChange, or nothing when the stored version moved on.
-- Every key below carries the contact's shard tag, so this runs in one slot, atomically.
--
-- KEYS: 1 contact, 2 events list, 3 tombstone, 4 jobs hash, 5 queue zset,
--       6 dead zset, 7 contact's job ids set, 8 expiry zset, 9 stats hash,
--       10 retention index zset (contact id → inactive since, ms)
-- ARGV: 1 expected version, 2 contact id, 3 'put' or 'delete', 4 new version,
--       5 contact (compact), 6 '1' to clear the tombstone, 7 tombstone JSON to set or '',
--       8 #events, 9 #jobs, 10 #pending added, 11 #pending removed, 12 #counters,
--       then event JSON..., (job id, due ms, job JSON)..., (expiry member, expiry ms)...,
--       expiry member..., (counter name, delta)..., inactive since ms or ''
-- Expiry members come built by Rust (store/codec.rs); for a delete the removed ones
-- include every pending confirmation of the stored contact, read just before.
-- Returns 1 when written, 0 on a version conflict.

-- The contact is a string '<version>:<contact>'. Stores written by earlier releases hold
-- a hash {v, d} instead; the first write of such a contact replaces it with the string.
local stored_version = '0'
local stored_type = redis.call('TYPE', KEYS[1]).ok
if stored_type == 'string' then
  stored_version = string.match(redis.call('GET', KEYS[1]), '^(%d+):') or ''
elseif stored_type == 'hash' then
  stored_version = redis.call('HGET', KEYS[1], 'v') or '0'
end
if stored_version ~= ARGV[1] then
  return 0
end

local cid = ARGV[2]

if ARGV[3] == 'put' then
  redis.call('SET', KEYS[1], ARGV[4] .. ':' .. ARGV[5])
else
  for _, job_id in ipairs(redis.call('SMEMBERS', KEYS[7])) do
    redis.call('HDEL', KEYS[4], job_id)
    redis.call('ZREM', KEYS[5], job_id)
    redis.call('ZREM', KEYS[6], job_id)
  end
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[7])
end

local events = tonumber(ARGV[8])
local jobs = tonumber(ARGV[9])
local added = tonumber(ARGV[10])
local removed = tonumber(ARGV[11])
local counters = tonumber(ARGV[12])
local i = 13

for _ = 1, events do
  redis.call('RPUSH', KEYS[2], ARGV[i])
  i = i + 1
end
for _ = 1, jobs do
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2])
  redis.call('ZADD', KEYS[5], ARGV[i + 1], ARGV[i])
  redis.call('SADD', KEYS[7], ARGV[i])
  i = i + 3
end
for _ = 1, added do
  redis.call('ZADD', KEYS[8], ARGV[i + 1], ARGV[i])
  i = i + 2
end
for _ = 1, removed do
  redis.call('ZREM', KEYS[8], ARGV[i])
  i = i + 1
end
for _ = 1, counters do
  -- A counter back at zero is dropped, so the stats hashes only hold live counts.
  if redis.call('HINCRBY', KEYS[9], ARGV[i], ARGV[i + 1]) == 0 then
    redis.call('HDEL', KEYS[9], ARGV[i])
  end
  i = i + 2
end

-- The retention index: contacts with no opt-in, scored by when they became inactive.
local inactive_since = ARGV[i]
if ARGV[3] == 'put' and inactive_since ~= nil and inactive_since ~= '' then
  redis.call('ZADD', KEYS[10], inactive_since, cid)
else
  redis.call('ZREM', KEYS[10], cid)
end

if ARGV[6] == '1' then
  redis.call('DEL', KEYS[3])
end
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[3], ARGV[7])
end
return 1
