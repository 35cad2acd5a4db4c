-- Add entries to the stream KEYS[1] with new ids while HSI's next XADD MAXLEN ARGV[1] (0 = no
-- limit) would trim nothing a consumer group has not processed (stream_room); no MAXLEN here, so
-- nothing already there is trimmed by this call.
-- KEYS[2] is this call's receipt (the protocol of push.lua): if it exists (a reconcile aborted the
-- call) nothing is done and -1 is returned; otherwise the count added is stored there for ARGV[2]
-- seconds. ARGV[3..]: for each entry its number of fields n, then n name/value pairs.
-- Returns how many entries were added, in order; the rest did not fit and were not written.
if redis.call('EXISTS', KEYS[2]) == 1 then
  return -1
end
local wrong = wrong_type(KEYS[1], 'stream', 'added')
if wrong then
  return redis.error_reply(wrong)
end
local entries, i = 0, 3
while i <= #ARGV do
  entries, i = entries + 1, i + 1 + 2 * tonumber(ARGV[i])
end
local room = stream_room(KEYS[1], tonumber(ARGV[1]), entries)
local pushed = 0
i = 3
while i <= #ARGV do
  if pushed == room then
    break
  end
  local n = tonumber(ARGV[i])
  local args = {}
  for j = i + 1, i + 2 * n do
    args[#args + 1] = ARGV[j]
  end
  redis.call('XADD', KEYS[1], '*', unpack(args))
  pushed = pushed + 1
  i = i + 1 + 2 * n
end
redis.call('SET', KEYS[2], pushed, 'EX', ARGV[2])
return pushed
