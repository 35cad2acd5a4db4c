-- Read stretches of lists for a page without sending any entry larger than a page shows: a list
-- entry cannot be read in part (there is no GETRANGE for lists), so the cut is made here, inside
-- Redis, and a 50 MB entry costs the page its first bytes, not 50 MB over the wire and in Python.
-- Reads only (run as EVALSHA_RO).
--
-- KEYS the lists. ARGV[1], ARGV[2] the LRANGE start and stop (negative: from the tail), the same
-- for every key; ARGV[3] the most bytes of an entry sent whole (0: send every entry whole);
-- ARGV[4] how many of its last bytes are sent with an entry cut (so its fingerprint covers both
-- ends of it); ARGV[5] the bytes the call reads at most (`read_range`: the first key's first entry
-- is always read); ARGV[6] 1 to read from stop back to start (a newest-first page), else 0.
--
-- Returns, per key, {LLEN, index of the first entry read, entry...}, the entries in the order read:
-- an entry is its bytes, or {size, head, tail} when it is larger than ARGV[3]. A key whose entries
-- were not all read (the budget ran out) has fewer; for a key of another type, Redis's WRONGTYPE
-- error in its place. What was read of a large entry is garbage once `peek` returns; a call that
-- read a megabyte or more frees it before it ends (`release`).
local start, stop = tonumber(ARGV[1]), tonumber(ARGV[2])
local whole, tail = tonumber(ARGV[3]), tonumber(ARGV[4])
local budget, backward = tonumber(ARGV[5]), ARGV[6] == '1'

local function peek(key)
  local length = redis.pcall('LLEN', key)
  if type(length) == 'table' then
    return length -- the error (WRONGTYPE) replies for this key alone
  end
  local first = start < 0 and math.max(length + start, 0) or start
  local last = math.min(stop < 0 and length + stop or stop, length - 1)
  local items, spent = read_range(key, first, last, backward, budget, whole > 0 and whole or LARGE_ENTRY)
  budget = budget - spent
  local found = {length, backward and last or first}
  for i = 1, #items do
    found[i + 2] = cut(items[i], whole, tail)
  end
  return found
end

local result = {}
for k = 1, #KEYS do
  result[k] = peek(KEYS[k])
end
release(tonumber(ARGV[5]) - budget) -- what was read of large entries goes with the call
return result
