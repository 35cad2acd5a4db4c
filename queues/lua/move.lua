-- Move list entries, identified by their exact bytes, from KEYS[1] to KEYS[3] (or delete them
-- when KEYS[3] is absent), atomically per call: every entry is in exactly one place.
-- KEYS[2] is this call's receipt: if it already exists (a reconcile aborted the call) nothing
-- is done; otherwise the statuses are stored there, so a crashed caller's work can be settled.
-- ARGV[1]: max length of the target (0 = no limit); ARGV[2]: a tombstone unique to this call;
-- ARGV[3]: receipt lifetime in seconds; ARGV[4]: the bytes of neighbours a call may read while it
-- looks for entries that left their hints; then triples (index hint, exact bytes, bytes to push).
-- Returns one status per triple: "ok", "missing" (neither at its hint nor among the entries just
-- before it: gone, or moved further than a call can afford to look) or "full" (target at max
-- length, entry left) -- or the single status "aborted".
local source, receipt, target = KEYS[1], KEYS[2], KEYS[3]
local max_len, tombstone, receipt_ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
if redis.call('EXISTS', receipt) == 1 then
  return {'aborted'}
end

-- An entry not at its hint has moved since it was seen (towards the head, as HSI only appends to
-- DLQs, unless someone pushed at the head): it is looked for among the WINDOW entries on either
-- side of its hint, read in aligned blocks of WINDOW that the call reads once each, never by
-- scanning the list. The occurrence nearest the hint wins; positions already taken are skipped.
-- Blocks are read with read_range, `budget` bytes in all: a block of neighbours of megabytes
-- would be gigabytes to copy, so once the budget is spent (a block it could not read whole), an
-- entry is looked for as a large one is (locate_large).
local WINDOW = 250
local blocks, taken, spent = {}, {}, 0
local function block(b)
  if blocks[b] == nil then
    local items, bytes, complete = {}, 0, false
    if spent <= budget then
      items, bytes, complete =
        read_range(source, b * WINDOW, b * WINDOW + WINDOW - 1, false, budget - spent, LARGE_ENTRY)
    end
    spent = spent + bytes
    blocks[b] = complete and items
  end
  return blocks[b]
end

-- Whether `raw` is at `pos` (an untaken position): true, nil, or false when its block is over the
-- budget.
local function probe(pos, raw)
  if pos < 0 or taken[pos] then
    return nil
  end
  local items = block(math.floor(pos / WINDOW))
  if not items then
    return false
  end
  return items[pos % WINDOW + 1] == raw or nil
end

-- A large entry (over LARGE_ENTRY bytes), or any once the blocks' budget is spent, is looked for
-- where Redis keeps the list instead: LPOS compares the entries from the list's nearer end up to
-- WINDOW past the hint, without copying them into the script (blocks of WINDOW entries of
-- megabytes would be gigabytes to copy); tombstoned positions hold the tombstone, so they never
-- match.
local function locate_large(hint, raw)
  local length = redis.call('LLEN', source)
  local positions
  if hint < length / 2 then
    positions = redis.call('LPOS', source, raw, 'COUNT', 0, 'MAXLEN', hint + WINDOW + 1)
  else
    positions = redis.call('LPOS', source, raw, 'RANK', -1, 'COUNT', 0, 'MAXLEN', length - hint + WINDOW)
  end
  local best
  for _, pos in ipairs(positions) do
    local distance = math.abs(pos - hint)
    if distance <= WINDOW and (not best or distance < math.abs(best - hint)) then
      best = pos
    end
  end
  return best
end

local function locate(hint, raw)
  if hint < 0 then
    return redis.call('LPOS', source, raw, 'MAXLEN', WINDOW)
  end
  if not taken[hint] and redis.call('LINDEX', source, hint) == raw then
    return hint
  end
  if #raw > LARGE_ENTRY then
    return locate_large(hint, raw)
  end
  for distance = 1, WINDOW do
    local before, after = hint - distance, hint + distance
    local found = probe(before, raw)
    if found then
      return before
    end
    if found == nil then
      found = probe(after, raw)
      if found then
        return after
      end
    end
    if found == false then
      return locate_large(hint, raw)
    end
  end
  return nil
end

-- Entries are tombstoned where they are, so the hints of the call's other entries stay true, and
-- removed together at the end: removing one from the middle of a list means scanning to it (LREM,
-- about 0.15 us per entry passed), so the call scans once from each end at most, not per entry.
local removed = {}
local function remove_at(pos)
  redis.call('LSET', source, pos, tombstone)
  removed[#removed + 1] = pos
  taken[pos] = true
end

local function remove_tombstones()
  local half = redis.call('LLEN', source) / 2
  local from_head = 0
  for _, pos in ipairs(removed) do
    if pos < half then
      from_head = from_head + 1
    end
  end
  if from_head > 0 then
    redis.call('LREM', source, from_head, tombstone)
  end
  if #removed > from_head then
    redis.call('LREM', source, from_head - #removed, tombstone)
  end
end

local wrong = target and wrong_type(target, 'list', 'moved')
if wrong then
  return redis.error_reply(wrong)
end

local results = {}
local target_len = target and redis.call('LLEN', target) or 0
for i = 5, #ARGV, 3 do
  local status = 'ok'
  if target and max_len > 0 and target_len >= max_len then
    status = 'full'
  else
    local pos = locate(tonumber(ARGV[i]), ARGV[i + 1])
    if not pos then
      status = 'missing'
    else
      remove_at(pos)
      if target then
        redis.call('RPUSH', target, ARGV[i + 2])
        target_len = target_len + 1
      end
    end
  end
  results[#results + 1] = status
end
remove_tombstones()
redis.call('SET', receipt, table.concat(results, ','), 'EX', receipt_ttl)
blocks = nil
release(spent + given(5))
return results
