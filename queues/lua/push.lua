-- Append ARGV[3..] to the list KEYS[1] while it is shorter than ARGV[1] (0 = no limit).
-- KEYS[2] is this call's receipt: if it exists (a reconcile aborted the call) nothing is done
-- and -1 is returned; otherwise the count appended is stored there for ARGV[2] seconds.
-- Returns how many were appended; the rest did not fit and were not written.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return -1
end
local max_len = tonumber(ARGV[1])
local len = redis.call('LLEN', KEYS[1])
local pushed = 0
for i = 3, #ARGV do
  if max_len > 0 and len >= max_len then
    break
  end
  redis.call('RPUSH', KEYS[1], ARGV[i])
  len = len + 1
  pushed = pushed + 1
end
redis.call('SET', KEYS[2], pushed, 'EX', ARGV[2])
return pushed
