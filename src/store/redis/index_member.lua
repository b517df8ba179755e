-- Adds one member index entry (store/redis/member_index.rs) for a contact that is still
-- stored at the version the entry was computed from; never for a missing contact.
-- KEYS: 1 contact, 2 member index hash. ARGV: 1 version, 2 field, 3 contact id (raw).
-- Returns 1 when written, 0 when the contact is gone or has moved on.
if ARGV[1] == '0' or stored_version(KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
