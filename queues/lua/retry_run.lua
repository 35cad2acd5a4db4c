-- Retry a run of DLQ entries to their source queue in one atomic step, reading them itself: what
-- it reads is what it moves, so no entry can be retried twice or lost, whoever else is acting.
-- Retry-all's fast path: HSI's own entries (JSON written by Python's json.dumps, so printable
-- ASCII) are retried here without a round trip through Python per entry.
--
-- KEYS[1] the DLQ, KEYS[2] its source queue.
-- ARGV[1] max length of the source (0 = no limit); ARGV[2] position of the first entry to look at
-- (entries before it were left in place by the caller); ARGV[3] how many to look at; ARGV[4] a
-- tombstone unique to this call; ARGV[5] how many retried entries to send back (for the audit).
--
-- An entry is retried here when it starts with {"original_job": {...} (the object printable ASCII
-- JSON) and ends with }; the object's exact bytes are pushed, i.e. what HSI's producer wrote.
-- `dlq.job_span` is the same rule in Python. The run stops at the first entry that does not fit
-- the rule ("defer": Python decides about that one, e.g. Z: compressed or overflow entries), when
-- the source is full ("full"), after ARGV[3] entries ("more") or at the end of the DLQ ("end").
-- Returns {retried, stop, sample...}.
--
-- lua-cjson by default also accepts hex, inf/nan and leading-zero numbers, which Python's json
-- rejects; those are turned off for the duration of the call (and restored even on error, so
-- other scripts on this server see no change). cjson still accepts ".5" and "1."; no JSON writer
-- produces them.
local source, target = KEYS[1], KEYS[2]
local max_len, start, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tombstone, sample = ARGV[4], tonumber(ARGV[5])
local find, sub, byte, pcall, decode = string.find, string.sub, string.byte, pcall, cjson.decode
local CLOSE = 125 -- '}'
local PRINTABLE_TO_CLOSE = '^[ -|~]*}' -- printable ASCII but '}', then '}'
local TRIES = 8 -- closing braces tried before leaving a deeply nested job to Python
local CHUNK = 1000 -- arguments per RPUSH/LPUSH (Lua's unpack has a stack limit)

local function payload_of(raw)
  local _, head = find(raw, '^{%s*"original_job"%s*:%s*{')
  if not head or byte(raw, -1) ~= CLOSE then
    return nil
  end
  -- Each step reads printable ASCII up to the next '}' in one pattern match, so a candidate is
  -- printable through and through by construction; a byte outside it ends the search (Python's).
  local _, close = find(raw, PRINTABLE_TO_CLOSE, head + 1)
  for _ = 1, TRIES do
    if not close then
      return nil
    end
    -- An object text starting at `head` is valid JSON only up to its own matching brace.
    local candidate = sub(raw, head, close)
    if pcall(decode, candidate) then
      return candidate
    end
    _, close = find(raw, PRINTABLE_TO_CLOSE, close + 1)
  end
  return nil
end

local function push_all(key, command, items, first, last, step)
  for i = first, last, step * CHUNK do
    local chunk, stop = {}, (step > 0) and math.min(i + CHUNK - 1, last) or math.max(i - CHUNK + 1, last)
    for j = i, stop, step do
      chunk[#chunk + 1] = items[j]
    end
    redis.call(command, key, unpack(chunk))
  end
end

local function run()
  local kind = redis.call('TYPE', target)['ok']
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply(target .. ' is a ' .. kind .. ', not a list: nothing was moved')
  end
  -- Nothing to pop when the first entry is for Python or the source is full.
  local first = redis.call('LINDEX', source, start)
  if not first then
    return {0, 'end'}
  end
  if not payload_of(first) then
    return {0, 'defer'}
  end
  local room = count
  if max_len > 0 then
    room = math.max(max_len - redis.call('LLEN', target), 0)
    if room == 0 then
      return {0, 'full'}
    end
  end
  local raws
  if start == 0 then
    raws = redis.call('LPOP', source, count) or {}
  else
    raws = redis.call('LRANGE', source, start, start + count - 1)
  end
  local payloads, stop = {}, (#raws < count) and 'end' or 'more'
  for i = 1, #raws do
    if i > room then
      stop = 'full'
      break
    end
    local payload = payload_of(raws[i])
    if not payload then
      stop = 'defer'
      break
    end
    payloads[i] = payload
  end
  local n = #payloads
  if start == 0 then
    if n < #raws then
      push_all(source, 'LPUSH', raws, #raws, n + 1, -1) -- put back, in order, what stays
    end
  elseif n > 0 then
    for i = start, start + n - 1 do
      redis.call('LSET', source, i, tombstone)
    end
    redis.call('LREM', source, n, tombstone)
  end
  if n > 0 then
    push_all(target, 'RPUSH', payloads, 1, n, 1)
  end
  local result = {n, stop}
  for i = 1, math.min(sample, n) do
    result[#result + 1] = raws[i]
  end
  return result
end

local invalid_numbers, max_depth = cjson.decode_invalid_numbers(), cjson.decode_max_depth()
cjson.decode_invalid_numbers(false)
cjson.decode_max_depth(64)
local ok, result = pcall(run)
cjson.decode_invalid_numbers(invalid_numbers)
cjson.decode_max_depth(max_depth)
if not ok then
  error(result)
end
return result
