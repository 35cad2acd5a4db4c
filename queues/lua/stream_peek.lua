-- Read a stream's entries for a page without sending any field value larger than a page shows:
-- the stream counterpart of peek.lua. A value over ARGV[1] bytes comes as {size, head}, so a field
-- of 50 MB costs a page its first bytes, not 50 MB over the wire and in Python; and a call stops
-- once it has read ARGV[2] bytes, as list reads do, because every byte read into a script costs
-- Redis time. Reads only (run as EVALSHA_RO).
--
-- KEYS[1] the stream. ARGV[1] the most bytes of a value sent whole (0: every value whole); ARGV[2]
-- the bytes the call reads at most (the first entry is always read); ARGV[3] what to read:
--   'range': ARGV[4], ARGV[5] XRANGE's start and end ('-', '+', an id, '(' and an id for after it),
--            ARGV[6] how many entries at most, ARGV[7] '1' to read from the end back (XREVRANGE);
--            read as read_stream in lib.lua reads; but a stream of at most ARGV[8] entries whose
--            MEMORY USAGE (SAMPLES 0: every node's bytes, exact) is at most ARGV[9] bytes is not
--            read at all: `reached` -1 tells the caller to read it with a plain XRANGE, which no
--            read of so small a stream can make costly, at a fifth of a script's cost;
--   'ids':   ARGV[4...] entry ids, each read by itself, in order;
--   'ends':  each key's length and the id of its first entry (ARGV[4] '1': its last), for every
--            key in KEYS, and nothing of the entry (the oldest entry's age, the newest one's id
--            for a cache key).
--
-- 'ends' returns per key {XLEN, id} (id false for an empty stream), or the key's error (WRONGTYPE). Else
-- returns {XLEN, reached, entry...}: an entry is {id, {name, value, ...}} as XRANGE gives it, but
-- for the cut values. For a range, `reached` is 1 when the read got to the end of the range (or of
-- the stream), 0 when the budget or the count stopped it, -1 for a stream to read plainly; for
-- ids, how many of them it looked at (an id no longer in the stream is left out of the entries).
local whole, budget, mode = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local key, found = KEYS[1], {}

local function take(entry)
  found[#found + 1] = cut_values(entry, whole)
end

local function read_ids()
  local spent = 0
  for i = 4, #ARGV do
    if spent > budget then
      return i - 4, spent
    end
    local rows = redis.call('XRANGE', key, ARGV[i], ARGV[i], 'COUNT', 1)
    if rows[1] then
      spent = spent + entry_size(rows[1])
      take(rows[1])
    end
  end
  return #ARGV - 3, spent
end

local function ends()
  local found, last = {}, ARGV[4] == '1'
  for k = 1, #KEYS do
    local length = redis.pcall('XLEN', KEYS[k])
    if type(length) == 'table' then
      found[k] = length -- the error (WRONGTYPE) replies for this key alone
    else
      local rows = last and redis.call('XREVRANGE', KEYS[k], '+', '-', 'COUNT', 1)
        or redis.call('XRANGE', KEYS[k], '-', '+', 'COUNT', 1)
      found[k] = {length, rows[1] and rows[1][1] or false}
    end
  end
  return found
end

if mode == 'ends' then
  return ends()
end
-- Whether the whole stream is small enough to read plainly (see 'range' above).
local function plain(length)
  if length > tonumber(ARGV[8]) then
    return false
  end
  local bytes = redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')
  return not bytes or bytes <= tonumber(ARGV[9])
end

local length, reached, read_bytes = redis.call('XLEN', key), nil, 0
if mode == 'ids' then
  reached, read_bytes = read_ids()
elseif plain(length) then
  reached = -1
else
  reached, read_bytes = read_stream(key, ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7] == '1', budget, take)
end
local result = {length, reached}
for i = 1, #found do
  result[i + 2] = found[i]
end
release(read_bytes) -- what was read of large values goes with the call
return result
