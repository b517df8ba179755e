-- Put in front of the scripts that check a contact's version (apply, index_member).
-- The version of the contact stored at `key`, as a string: '0' when there is none.
-- The contact is a string '<version>:<contact>'; stores written by earlier releases hold
-- a hash {v, d} instead, until the contact's next write.
local function stored_version(key)
  local stored_type = redis.call('TYPE', key).ok
  if stored_type == 'string' then
    return string.match(redis.call('GET', key), '^(%d+):') or ''
  elseif stored_type == 'hash' then
    return redis.call('HGET', key, 'v') or '0'
  end
  return '0'
end

