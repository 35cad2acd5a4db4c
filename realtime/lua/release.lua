-- Release the relay lock on a clean exit, only if this relay holds it.
--
-- KEYS[1] the leader lock, KEYS[2] the relay status hash. ARGV[1] this relay's id.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
local now = redis.call('TIME')
redis.call('HSET', KEYS[2], 'heartbeat', now[1] .. '.' .. string.format('%06d', tonumber(now[2])),
  'state', 'stopped', 'leader', '')
return 1
