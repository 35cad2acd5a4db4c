-- Append ARGV[2..] to the list KEYS[1] while it is shorter than ARGV[1] (0 = no limit).
-- Returns how many were appended; the rest did not fit and were not written.
local max_len = tonumber(ARGV[1])
local len = redis.call('LLEN', KEYS[1])
local pushed = 0
for i = 2, #ARGV do
  if max_len > 0 and len >= max_len then
    break
  end
  redis.call('RPUSH', KEYS[1], ARGV[i])
  len = len + 1
  pushed = pushed + 1
end
return pushed
