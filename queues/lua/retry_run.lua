-- Retry a run of DLQ entries to their source queue in one atomic step, reading them itself: what
-- it reads is what it moves, so no entry can be retried twice or lost, whoever else is acting.
-- Retry-all's fast path: HSI's own entries (JSON written by Python's json.dumps, so printable
-- ASCII) are retried here without a round trip through Python per entry.
--
-- KEYS[1] the DLQ, KEYS[2] its source queue.
-- ARGV[1] max length of the source (0 = no limit); ARGV[2] how many entries to look at, from the
-- head; ARGV[3] how many retried entries to send back (for the audit); ARGV[4] the bytes to read at
-- most (the first entry is always read; see read_range in lib.lua).
--
-- An entry is retried here when it starts with {"original_job": {...} (the object printable ASCII
-- JSON) and ends with }; the object's exact bytes are pushed, i.e. what HSI's producer wrote.
-- `dlq.job_span` is the same rule in Python. The run stops at the first entry that does not fit
-- the rule ("defer": Python decides about that one, e.g. Z: compressed or overflow entries), when
-- the source is full ("full"), after ARGV[2] entries or ARGV[4] bytes ("more") or at the end of
-- the DLQ ("end").
-- Returns {retried, stop, sample...} (a sampled entry over 64 KiB as {size, head, tail}: `cut` in
-- lib.lua). What Python decodes goes through rotate.lua.
--
-- Cost, in redis-server instructions per HSI entry (bench/dlq_instructions.py): about 18,700
-- against 8,000 for a bare LPOP + RPUSH script, and 23,800 when cjson decoded every job. Hence the
-- shapes below (one pattern match checks and captures a job like the run's others, no decoding),
-- one pcall for the whole run for what they leave to cjson, and the general pattern only for
-- entries that do not start as HSI's do. The run is read with LRANGEs (read_range) and cut with
-- LTRIM (as cheap as LPOP here), so nothing is popped and put back.
--
-- lua-cjson by default also accepts hex, inf/nan and leading-zero numbers, which Python's json
-- rejects; those are turned off for the duration of the call (and restored even on error, so
-- other scripts on this server see no change). It also reads "1." and "-.5": `check` refuses them.
local source, target = KEYS[1], KEYS[2]
local max_len, count = tonumber(ARGV[1]), tonumber(ARGV[2])
local sample, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local find, sub, byte, match, gsub = string.find, string.sub, string.byte, string.match, string.gsub
local concat = table.concat
local pcall, decode = pcall, cjson.decode
local CLOSE = 125 -- '}'
local PRINTABLE = '[ -|~]*' -- printable ASCII but '}'
local PRINTABLE_TO_CLOSE = '^' .. PRINTABLE .. '}' -- then '}'
local TRIES = 8 -- closing braces tried before leaving a deeply nested job to Python
local PREFIX = '{"original_job": {' -- how Python's json.dumps starts HSI's entries
local HEAD = '^{%s*"original_job"%s*:%s*{' -- the rule; PREFIX is its common case, cheaper to compare
local FAST_HEAD = '^' .. sub(PREFIX, 1, -2) .. '({' -- PREFIX as a pattern, capturing the job

-- Where an entry's job starts, and where its first candidate ends: the first '}' after the start,
-- with only printable ASCII between (the one pattern match checks both, so a candidate is printable
-- through and through by construction). Nil when the entry does not fit the rule.
local function span_of(raw)
  local _, head = nil, #PREFIX
  if sub(raw, 1, head) ~= PREFIX then
    _, head = find(raw, HEAD)
  end
  if not head or byte(raw, -1) ~= CLOSE then
    return nil
  end
  local _, close = find(raw, PRINTABLE_TO_CLOSE, head + 1)
  return head, close
end

-- cjson also reads "1.", "1.e5" and "-.5" as numbers (not ".5"), which JSON (and so Python and
-- HSI) does not. Such a number has a '.' after a digit and before one of 'eE,} ]', or after a
-- '-'; `dubious` finds that shape of text (plain searches for '.', which are cheap), then it is
-- looked for again with the strings taken out (file names such as "snap_1.jpg" are not dubious).
local AFTER = {[101] = true, [69] = true, [44] = true, [125] = true, [93] = true, [32] = true}
local MINUS, ZERO, NINE = 45, 48, 57

local function dubious(text)
  local at = find(text, '.', 1, true)
  while at do
    local before, _, after = byte(text, at - 1, at + 1)
    if before == MINUS or (before and before >= ZERO and before <= NINE and AFTER[after]) then
      return true
    end
    at = find(text, '.', at + 1, true)
  end
  return false
end

-- Decode a candidate as JSON would (raises otherwise; decode_all runs it under one pcall).
local function check(candidate)
  decode(candidate)
  if dubious(candidate) and dubious((gsub(gsub(candidate, '\\.', ''), '"[^"]*"', ''))) then
    error('not a JSON number')
  end
end

-- The job's exact bytes: an object text starting at `head` is valid JSON only up to its own
-- matching brace, so the candidates up to each following '}' are tried in turn (nested objects).
local function payload_of(raw)
  local head, close = span_of(raw)
  for _ = 1, TRIES do
    if not close then
      return nil
    end
    local candidate = sub(raw, head, close)
    if pcall(check, candidate) then
      return candidate
    end
    _, close = find(raw, PRINTABLE_TO_CLOSE, close + 1)
  end
  return nil
end

-- PREFIX's case of span_of in one match, capturing the first candidate itself
local FAST = FAST_HEAD .. PRINTABLE .. '})'

-- The shape of a flat job, learnt from one entry of the run: FAST with the candidate spelt out as
-- that job's keys and separators, literally, and each value as a pattern that matches only JSON of
-- that value's kind. An entry that matches a shape has a valid job by construction, so cjson need
-- not read it: for a run of entries alike (a DLQ is mostly one failure of one kind of job), one
-- match per entry does what the printable match and cjson's decode did. The shape matches no more
-- than the rule above retries, and the same bytes (every piece is printable ASCII without '}', so
-- its capture is the first candidate), which tests/test_retry_run.py checks on generated entries.
-- Anything else (escapes, nested values, numbers such as 0 or 1e5, other separators) does not
-- match and goes the general way.
local STRING = '"[#-[^-|~ !%]]*"' -- a JSON string of PRINTABLE but '"' and '\': no escapes
local KEY = '^' .. STRING .. ': '
local VALUES = { -- what a value of the first entry is, tried in order: {pattern, the shape's piece}
  {'^' .. STRING, STRING},
  {'^%-?[1-9]%d*%.%d+', '%-?[1-9]%d*%.%d+'},
  {'^%-?0%.%d+', '%-?0%.%d+'},
  {'^%-?[1-9]%d*', '%-?[1-9]%d*'},
  {'^true', 'true'},
  {'^false', 'false'},
  {'^null', 'null'},
}
local FIELDS = 16 -- keys a shape spells out at most (each value piece is a level of the matcher)
local SHAPES = 4 -- shapes learnt per call at most, for a run of entries of several kinds

local function literal(text)
  return (gsub(text, '%W', '%%%0'))
end

-- The shape of a first candidate, or false when it is not a flat object of such values joined as
-- json.dumps joins them (', ' and ': ').
local function shape_of(candidate)
  local parts, at = {FAST_HEAD}, 2
  for _ = 1, FIELDS do
    local _, key_end = find(candidate, KEY, at)
    if not key_end then
      return false
    end
    local value_end, piece
    for _, value in ipairs(VALUES) do
      _, value_end = find(candidate, value[1], key_end + 1)
      if value_end then
        piece = value[2]
        break
      end
    end
    if not value_end then
      return false
    end
    parts[#parts + 1] = literal(sub(candidate, at, key_end)) .. piece
    if value_end + 1 == #candidate then
      parts[#parts + 1] = '})'
      return concat(parts)
    end
    if sub(candidate, value_end + 1, value_end + 2) ~= ', ' then
      return false
    end
    parts[#parts + 1] = ', '
    at = value_end + 3
  end
  return false
end

-- Each entry's first candidate (what payload_of tries first), up to the first entry without one,
-- and the indexes of those that matched no shape, in order (to be decoded). The shape is learnt
-- from the first entry and again from one that does not match it (SHAPES times at most).
local function first_candidates(raws, last)
  local candidates, unshaped, shape, learnt = {}, {}, false, 0
  for i = 1, last do
    local raw = raws[i]
    local closed = byte(raw, -1) == CLOSE
    local candidate = closed and shape and match(raw, shape)
    if not candidate then
      candidate = closed and match(raw, FAST)
      local new_shape = false
      if candidate and learnt < SHAPES then
        learnt, new_shape = learnt + 1, shape_of(candidate)
        shape = new_shape or shape
      end
      local shaped = new_shape and match(raw, new_shape) == candidate
      if not candidate then
        local head, close = span_of(raw)
        if not close then
          break
        end
        candidate = sub(raw, head, close)
      end
      if not shaped then
        unshaped[#unshaped + 1] = i
      end
    end
    candidates[i] = candidate
  end
  return candidates, unshaped
end

local function decode_all(items, which)
  for j = 1, #which do
    check(items[which[j]])
  end
end

-- What payload_of returns for each entry, up to the first entry it returns nil for. The common
-- case, every candidate matching a shape or decoding, costs one pcall for the run, not one each.
local function payloads_of(raws, last)
  local candidates, unshaped = first_candidates(raws, last)
  if #unshaped == 0 or pcall(decode_all, candidates, unshaped) then
    return candidates
  end
  local payloads, j = {}, 1
  for i = 1, #candidates do
    local payload = candidates[i]
    if unshaped[j] == i then
      j = j + 1
      payload = pcall(check, payload) and payload or payload_of(raws[i])
    end
    if not payload then
      break
    end
    payloads[i] = payload
  end
  return payloads
end

local read_bytes = 0
local function run()
  local wrong = wrong_type(target, 'list', 'moved')
  if wrong then
    return redis.error_reply(wrong)
  end
  -- Up to `count` entries, or fewer once `budget` bytes are read (read_range); nothing moves when
  -- the first is for Python or the source is full.
  local raws, spent, complete, refused =
    read_range(source, 0, count - 1, false, budget, LARGE_ENTRY, payload_of)
  read_bytes = spent
  if #raws == 0 then
    return {0, 'end'}
  end
  if refused then
    return {0, 'defer'}
  end
  local room = count
  if max_len > 0 then
    room = math.max(max_len - redis.call('LLEN', target), 0)
    if room == 0 then
      return {0, 'full'}
    end
  end
  local payloads = payloads_of(raws, math.min(#raws, room))
  local n, stop = #payloads, (complete and #raws < count) and 'end' or 'more'
  if n < #raws then
    stop = (n == room) and 'full' or 'defer'
  end
  if n > 0 then
    redis.call('LTRIM', source, n, -1)
    push_all(target, payloads)
  end
  local result = {n, stop}
  for i = 1, math.min(sample, n) do
    result[#result + 1] = cut(raws[i], LARGE_ENTRY, CUT_TAIL)
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
release(read_bytes)
return result
