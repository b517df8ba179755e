-- Writes one ContactChange, or nothing when the stored version moved on.
-- Every key below carries the contact's shard tag, so this runs in one slot, atomically.
--
-- KEYS: 1 contact, 2 event log (a string of frames; a list from earlier releases), 3 tombstone, 4 jobs hash, 5 queue zset,
--       6 dead zset, 7 contact's job ids set, 8 expiry zset, 9 stats hash,
--       10 retention index zset (contact id → inactive since, ms),
--       11 member index hash of the entry to set, 12 that of the entry to remove
--       (each any hash of this shard when there is none), 13 funnel hash, then one due
--       index zset per timer (in the order of `Timer::ALL`)
-- ARGV: 1 expected version, 2 contact id, 3 'put' or 'delete', 4 new version,
--       5 contact (compact), 6 '1' to clear the tombstone, 7 tombstone JSON to set or '',
--       8 #events, 9 #jobs, 10 #pending added, 11 #pending removed, 12 #counters,
--       13 #funnel counters,
--       then event JSON..., (job id, due ms, job JSON)..., (expiry member, expiry ms)...,
--       expiry member..., (counter name, delta)..., (funnel counter name, delta)...,
--       inactive since ms or '', member index field to set or '', field to remove or '',
--       contact id (raw bytes), then per timer its due time in ms or '' (not set)
-- Expiry members come built by Rust (store/codec.rs); for a delete the removed ones
-- include every pending confirmation of the stored contact, read just before.
-- Returns 1 when written, 0 on a version conflict.

-- `stored_version` comes from stored_version.lua, put in front of this script. A
-- contact still in an earlier release's hash form is replaced by the string form here.
if stored_version(KEYS[1]) ~= ARGV[1] then
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
local funnel = tonumber(ARGV[13])
local i = 14

-- The event log is one string of frames: a 4-byte big-endian length, then the event
-- (store/redis/event_log.rs reads it). Earlier releases kept a list; it is turned into
-- the string here, on the contact's first change with an event. SET, not APPEND: APPEND
-- would leave the string with as much room again for growth.
if events > 0 then
  local function frame(event)
    local n = #event
    return string.char(math.floor(n / 16777216) % 256, math.floor(n / 65536) % 256,
      math.floor(n / 256) % 256, n % 256) .. event
  end
  local parts = {}
  local log_type = redis.call('TYPE', KEYS[2]).ok
  if log_type == 'string' then
    parts[1] = redis.call('GET', KEYS[2])
  elseif log_type == 'list' then
    for _, event in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
      parts[#parts + 1] = frame(event)
    end
  end
  for _ = 1, events do
    parts[#parts + 1] = frame(ARGV[i])
    i = i + 1
  end
  redis.call('SET', KEYS[2], table.concat(parts))
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
for _ = 1, funnel do
  redis.call('HINCRBY', KEYS[13], ARGV[i], ARGV[i + 1])
  i = i + 2
end

-- The retention index: contacts with no opt-in, scored by when they became inactive.
local inactive_since = ARGV[i]
if ARGV[3] == 'put' and inactive_since ~= nil and inactive_since ~= '' then
  redis.call('ZADD', KEYS[10], inactive_since, cid)
else
  redis.call('ZREM', KEYS[10], cid)
end

-- The member index (store/redis/member_index.rs): an entry is removed only while it
-- still names this contact, and set after, so a change that moves it keeps it.
local index_set, index_remove, cid_bytes = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
if index_remove ~= '' and redis.call('HGET', KEYS[12], index_remove) == cid_bytes then
  redis.call('HDEL', KEYS[12], index_remove)
end
if index_set ~= '' then
  redis.call('HSET', KEYS[11], index_set, cid_bytes)
end

-- The due index: one zset per timer, the contact scored by when its timer is due.
for t = 14, #KEYS do
  local due = ARGV[i + 4 + (t - 14)]
  if ARGV[3] == 'put' and due ~= nil and due ~= '' then
    redis.call('ZADD', KEYS[t], due, cid)
  else
    redis.call('ZREM', KEYS[t], cid)
  end
end

if ARGV[6] == '1' then
  redis.call('DEL', KEYS[3])
end
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[3], ARGV[7])
end
return 1
