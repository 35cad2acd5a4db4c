-- Read stretches of lists for a page without sending any entry larger than a page shows: a list
-- entry cannot be read in part (there is no GETRANGE for lists), so the cut is made here, inside
-- Redis, and a 50 MB entry costs the page its first bytes, not 50 MB over the wire and in Python.
-- Reads only (run as EVALSHA_RO). What it read of a large entry is garbage once it returns; Lua's
-- collector frees it before the call ends (used_memory_lua is back where it was).
--
-- KEYS the lists. ARGV[1], ARGV[2] the LRANGE start and stop (negative: from the tail), the same
-- for every key; ARGV[3] the most bytes of an entry sent whole; ARGV[4] how many of its last bytes
-- are sent with an entry cut (so its fingerprint covers both ends of it).
--
-- Returns, per key, {LLEN, entry...}: an entry is its bytes, or {size, head, tail} when it is
-- larger than ARGV[3]; for a key of another type, Redis's WRONGTYPE error in its place.
local start, stop = tonumber(ARGV[1]), tonumber(ARGV[2])
local whole, tail = tonumber(ARGV[3]), tonumber(ARGV[4])
local sub = string.sub

local function peek(key)
  local length = redis.pcall('LLEN', key)
  if type(length) == 'table' then
    return length -- the error (WRONGTYPE) replies for this key alone
  end
  local found = {length}
  local items = redis.call('LRANGE', key, start, stop)
  for i = 1, #items do
    local item = items[i]
    if #item > whole then
      found[i + 1] = {#item, sub(item, 1, whole), sub(item, -tail)}
    else
      found[i + 1] = item
    end
  end
  return found
end

local result = {}
for k = 1, #KEYS do
  result[k] = peek(KEYS[k])
end
return result
