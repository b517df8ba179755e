-- Reads one contact and its event log in one atomic step (a backup's view of it).
-- KEYS: 1 contact, 2 event log. Returns {contact or nil, form of the log, ...}: the
-- contact as stored ('<version>:<compact>', or an earlier release's hash field 'd'),
-- then 'string' and the framed log, 'list' and each event, or 'none'.
local contact = false
local contact_type = redis.call('TYPE', KEYS[1]).ok
if contact_type == 'string' then
  contact = redis.call('GET', KEYS[1])
elseif contact_type == 'hash' then
  contact = redis.call('HGET', KEYS[1], 'd')
end
local log_type = redis.call('TYPE', KEYS[2]).ok
if log_type == 'string' then
  return {contact, 'string', redis.call('GET', KEYS[2])}
elseif log_type == 'list' then
  local out = {contact, 'list'}
  for _, event in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
    out[#out + 1] = event
  end
  return out
end
return {contact, 'none'}
