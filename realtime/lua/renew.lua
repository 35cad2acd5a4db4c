-- Renew the relay lock if this relay still holds it, and record its heartbeat.
--
-- KEYS[1] the leader lock, KEYS[2] the relay status hash.
-- ARGV[1] this relay's id, ARGV[2] lock TTL in milliseconds, ARGV[3] status hash TTL in seconds.
-- Returns 1 when renewed, 0 when another relay (or nobody) holds the lock.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local now = redis.call('TIME')
redis.call('HSET', KEYS[2], 'heartbeat', now[1] .. '.' .. string.format('%06d', tonumber(now[2])),
  'state', 'forwarding', 'leader', ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
