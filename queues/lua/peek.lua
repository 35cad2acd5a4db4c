-- Read stretches of lists for a page without sending any entry larger than a page shows: a list
-- entry cannot be read in part (there is no GETRANGE for lists), so the cut is made here, inside
-- Redis, and a 50 MB entry costs the page its first bytes, not 50 MB over the wire and in Python.
-- Reads only (run as EVALSHA_RO).
--
-- KEYS the lists. ARGV[1], ARGV[2] the LRANGE start and stop (negative: from the tail), the same
-- for every key; ARGV[3] the most bytes of an entry sent whole; ARGV[4] how many of its last bytes
-- are sent with an entry cut (so its fingerprint covers both ends of it); ARGV[5] the bytes the
-- call reads at most before it stops (it always reads one entry); ARGV[6] 1 to read from stop
-- back to start (a newest-first page), else 0.
--
-- Returns, per key, {LLEN, index of the first entry read, entry...}, the entries in the order read:
-- an entry is its bytes, or {size, head, tail} when it is larger than ARGV[3]. A key whose entries
-- were not all read (the budget ran out) has fewer; for a key of another type, Redis's WRONGTYPE
-- error in its place.
--
-- Cost: every byte of an entry read here is copied three times inside Redis (into the command's
-- reply, into one string, into a Lua string), about 2.5 ms per MB, five times what a plain LRANGE
-- costs Redis, so the budget bounds the call. LRANGE runs on 1 entry, then 2, 4, up to CHUNK, and
-- back on 1 after a large one: one LRANGE never reads more than CHUNK entries, and a page of small
-- entries at any depth costs a few walks of the list, not one per entry. What was read of a large
-- entry is garbage once the call returns; Lua's collector frees it before the call ends.
local start, stop = tonumber(ARGV[1]), tonumber(ARGV[2])
local whole, tail = tonumber(ARGV[3]), tonumber(ARGV[4])
local budget, backward = tonumber(ARGV[5]), ARGV[6] == '1'
local CHUNK = 32
local sub, max, min = string.sub, math.max, math.min
local spent, read_any = 0, false

local function peek(key)
  local length = redis.pcall('LLEN', key)
  if type(length) == 'table' then
    return length -- the error (WRONGTYPE) replies for this key alone
  end
  local first = start < 0 and max(length + start, 0) or start
  local last = min(stop < 0 and length + stop or stop, length - 1)
  local at, step = backward and last or first, 1
  local found = {length, at}
  while first <= at and at <= last and (spent <= budget or not read_any) do
    local low, high = at, min(at + step - 1, last)
    if backward then
      low, high = max(at - step + 1, first), at
    end
    local items = redis.call('LRANGE', key, low, high)
    if #items == 0 then
      break
    end
    local large = false
    for n = 1, #items do
      local item = items[backward and #items + 1 - n or n]
      spent, read_any = spent + #item, true
      if #item > whole then
        found[#found + 1] = {#item, sub(item, 1, whole), sub(item, -tail)}
        large = true
      else
        found[#found + 1] = item
      end
    end
    at = backward and low - 1 or high + 1
    step = large and 1 or min(step * 2, CHUNK)
  end
  return found
end

local result = {}
for k = 1, #KEYS do
  result[k] = peek(KEYS[k])
end
return result
