-- Append one event to the console's stream, atomically fenced by the relay lock.
--
-- KEYS[1] the stream, KEYS[2] the relay's leader lock, KEYS[3] the relay status hash.
-- ARGV[1] fence: the relay id that must hold the lock, or '' for writers that need no lock
--         (console actions). A relay that lost the lock gets nil back and writes nothing.
-- ARGV[2] approximate MAXLEN. ARGV[3] idempotency token or '': when one of the last 16 entries
--         carries it, that entry's id is returned and nothing is written (a re-sent call).
-- ARGV[4..] field, value, ...
--
-- The id is explicit, <ms>-<n>: ms is Redis's clock, never below the last entry's; n is the last
-- entry's n + 1, so n counts every entry ever appended and readers can count what was trimmed.
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then
  return false
end
local look = 1
if ARGV[3] ~= '' then look = 16 end
local recent = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', look)
if ARGV[3] ~= '' then
  for _, entry in ipairs(recent) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'tok' and fields[i + 1] == ARGV[3] then
        return entry[1]
      end
    end
  end
end
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local n = 1
local last = nil
if recent[1] then
  last = recent[1][1]
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  -- A stream whose entries were all deleted still refuses ids up to its last generated one.
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then
      last = info[i + 1]
    end
  end
end
if last then
  local dash = string.find(last, '-', 1, true)
  local last_ms = tonumber(string.sub(last, 1, dash - 1))
  n = tonumber(string.sub(last, dash + 1)) + 1
  if last_ms > ms then
    ms = last_ms
  end
end
local id = string.format('%.0f-%.0f', ms, n)
local command = {'XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], id}
for i = 4, #ARGV do
  command[#command + 1] = ARGV[i]
end
redis.call(unpack(command))
if ARGV[1] ~= '' then
  redis.call('HINCRBY', KEYS[3], 'forwarded', 1)
end
return id
