-- Helpers every queue script starts with: queues.scripts prepends this file to each one.

-- Why `key` cannot be written as a `wanted` ('list' or 'stream'), or nil when it can be (it is one,
-- or absent). Scripts check before anything moves: a command on a wrong-typed key fails the script
-- midway, after the call's earlier writes have happened.
local function wrong_type(key, wanted, nothing_was)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= wanted and kind ~= 'none' then
    return key .. ' is a ' .. kind .. ', not a ' .. wanted .. ': nothing was ' .. nothing_was
  end
  return nil
end

-- Append `items` to the list `key`, 1000 per RPUSH (Lua's unpack has a stack limit).
local function push_all(key, items)
  for i = 1, #items, 1000 do
    redis.call('RPUSH', key, unpack(items, i, math.min(i + 999, #items)))
  end
end

-- How many entries may be added to the stream `key` (for a call adding up to `adding`) before
-- HSI's next XADD MAXLEN `max_len` would trim one that a consumer group has not processed; -1 when
-- there is no limit (max_len 0). HSI trims a stream rather than refusing it, and entries every
-- group has processed are history it trims on each XADD anyway, so a stream at MAXLEN whose groups
-- keep up still has room. What a group has not processed runs from its oldest pending entry (read,
-- not acknowledged) to the tail: the entries up to its last delivered one, counted by a bounded
-- XRANGE (pending entries are normally the last few delivered), plus its lag (not read yet); they
-- survive `r` more entries while that count + r <= max_len. A pending entry further back is placed
-- by a bounded XRANGE from the head instead (conservatively when it is further still). With no
-- group, or a lag Redis cannot tell, every entry counts as unprocessed: room is max_len - XLEN.
local TRIM_LOOKAHEAD = 250 -- entries an XRANGE reads at most to place a group's oldest pending one

local function stream_room(key, max_len, adding)
  if max_len <= 0 then
    return -1
  end
  local length = redis.call('XLEN', key)
  local groups = length > 0 and redis.call('XINFO', 'GROUPS', key) or {}
  if #groups == 0 then
    return math.max(math.min(max_len - length, adding), 0)
  end
  local unprocessed = 0 -- the most entries, from some group's oldest unprocessed one to the tail
  for _, reply in ipairs(groups) do
    local group = {}
    for i = 1, #reply, 2 do
      group[reply[i]] = reply[i + 1]
    end
    local lag, count = group['lag'], nil
    if type(lag) ~= 'number' then
      count = length
    elseif group['pending'] == 0 then
      count = lag
    else
      local oldest = redis.call('XPENDING', key, group['name'])[2]
      local delivered = group['last-delivered-id']
      local between = #redis.call('XRANGE', key, oldest, delivered, 'COUNT', TRIM_LOOKAHEAD)
      if between < TRIM_LOOKAHEAD then
        count = lag + between
      else -- far back: HSI trims length + r - max_len from the head; count what lies before it
        local wanted = math.min(length + math.min(adding, max_len) - max_len, TRIM_LOOKAHEAD)
        local before = wanted > 0 and #redis.call('XRANGE', key, '-', '(' .. oldest, 'COUNT', wanted) or 0
        count = wanted > 0 and length - before or lag
      end
    end
    unprocessed = math.max(unprocessed, count)
  end
  return math.max(math.min(max_len - unprocessed, adding), 0)
end

-- Lua frees the strings a call read only when its collector gets to them, which can be calls
-- later: after one page in 14 that read a 40 MB entry, Redis's Lua memory still held it, and the
-- entries a call is given stay in ARGV until the next call replaces it. A call that read or was
-- given (`spent`) a megabyte or more clears ARGV and collects before it returns, once its own
-- locals let go of what it read; a full cycle of the small heap a script leaves costs well under
-- a millisecond, next to the 2.5 ms per MB of reading.
local RELEASE_AT = 1048576
local function release(spent)
  if spent >= RELEASE_AT then
    for i = #ARGV, 1, -1 do
      ARGV[i] = nil
    end
    collectgarbage()
  end
end

-- The bytes of ARGV[first] and after: the entries a call was given.
local function given(first)
  local bytes = 0
  for i = first, #ARGV do
    bytes = bytes + #ARGV[i]
  end
  return bytes
end

-- How scripts read lists (read_range, below) and send large entries back (cut).
local READ_CHUNK = 32
local LARGE_ENTRY = 65536 -- dlq.READ_WHOLE: the `large` of read_range's callers that cut nothing
local CUT_TAIL = 1024 -- dlq.READ_TAIL

-- What a script sends back of an entry it read: the entry, or {size, head, tail} when it is over
-- `whole` bytes (the reply a page or an audit sample needs, not the whole of a large entry).
local function cut(item, whole, tail)
  if whole > 0 and #item > whole then
    return {#item, string.sub(item, 1, whole), string.sub(item, -tail)}
  end
  return item
end

-- Reading entries into a script copies each byte three times inside Redis (the command's reply, one
-- string, a Lua string: about 2.5 ms per MB), and a reply of many large entries is joined in 1 MB
-- steps, so scripts read lists through this: entries `first`..`last` (from `last` down when
-- `backward`) in LRANGEs of 1, 2, 4 ... READ_CHUNK entries, back to 1 after one over `large` bytes,
-- until `budget` bytes are read (one entry at least, unless `budget` is below 0). Returns the
-- entries in the order read, the bytes read, whether it got to the end of the range or of the
-- list, and true when `head_ok` (optional) refused the first entry, after which nothing more is
-- read. One LRANGE never reads more than READ_CHUNK entries; small entries at any depth cost a few
-- walks of the list, not one per entry.
local function read_range(key, first, last, backward, budget, large, head_ok)
  local items, k, spent, at, step = {}, 0, 0, backward and last or first, 1
  while first <= at and at <= last and spent <= budget do
    local low, high = at, math.min(at + step - 1, last)
    if backward then
      low, high = math.max(at - step + 1, first), at
    end
    local got = redis.call('LRANGE', key, low, high)
    local count, seen_large = #got, false
    for n = 1, count do
      local item = got[backward and count + 1 - n or n]
      local size = #item
      k = k + 1
      items[k] = item
      spent = spent + size
      if size > large then
        seen_large = true
      end
    end
    if count < high - low + 1 then
      return items, spent, true -- the list is shorter than the range
    end
    if k == 1 and head_ok and not head_ok(items[1]) then
      return items, spent, false, true -- the caller will not take the first: read no further
    end
    at = backward and low - 1 or high + 1
    step = seen_large and 1 or math.min(step * 2, READ_CHUNK)
  end
  return items, spent, not (first <= at and at <= last)
end

-- Streams: an entry as XRANGE gives it inside a script is {id, {name, value, ...}}.
local STREAM_DLQ_FIELDS = {original_message_id = true, dlq_reason = true, dlq_timestamp = true, delivery_count = true}

-- Its names and values in bytes.
local function entry_size(entry)
  local fields, size = entry[2], 0
  for i = 1, #fields do
    size = size + #fields[i]
  end
  return size
end

-- The entry with each value over `whole` bytes as {size, head} (in place; whole 0: as it is).
local function cut_values(entry, whole)
  local fields = entry[2]
  for i = 2, #fields, 2 do
    if whole > 0 and #fields[i] > whole then
      fields[i] = {#fields[i], string.sub(fields[i], 1, whole)}
    end
  end
  return entry
end

-- Re-add a stream DLQ entry's original fields (all but the DLQ's own) to `target` with a new id and
-- XDEL it from `source`: 'ok', or 'empty' when it has none to re-add (it stays).
local function retry_stream_entry(source, target, entry)
  local fields, args = entry[2], {}
  for j = 1, #fields, 2 do
    if not STREAM_DLQ_FIELDS[fields[j]] then
      args[#args + 1] = fields[j]
      args[#args + 1] = fields[j + 1]
    end
  end
  if #args == 0 then
    return 'empty'
  end
  redis.call('XADD', target, '*', unpack(args))
  redis.call('XDEL', source, entry[1])
  return 'ok'
end

-- Hand `visit` the entries of stream `key` from `low` to `high` (XRANGE's bounds; from `high` back
-- when `backward`), at most `left` of them, read as read_range reads lists: XRANGEs of 1, 2, 4 ...
-- READ_CHUNK entries, back to 1 after one over LARGE_ENTRY bytes, until `budget` bytes are read
-- (one entry at least). `visit` may return false to stop there. Returns 1 when the read got to the
-- end of the range, else 0 (the budget, the count or `visit` stopped it), and the bytes read.
local function read_stream(key, low, high, left, backward, budget, visit)
  local spent, step = 0, 1
  while left > 0 do
    if spent > budget then
      return 0, spent
    end
    local n = math.min(step, left)
    local rows = backward and redis.call('XREVRANGE', key, high, low, 'COUNT', n)
      or redis.call('XRANGE', key, low, high, 'COUNT', n)
    local seen_large = false
    for _, entry in ipairs(rows) do
      local size = entry_size(entry)
      spent = spent + size
      seen_large = seen_large or size > LARGE_ENTRY
      if visit(entry) == false then
        return 0, spent
      end
    end
    if #rows < n then
      return 1, spent
    end
    left = left - n
    local after = '(' .. rows[n][1]
    if backward then
      high = after
    else
      low = after
    end
    step = seen_large and 1 or math.min(step * 2, READ_CHUNK)
  end
  return 0, spent -- as many as asked: whether more follow is for the next read to find
end
