-- Move list entries, identified by their exact bytes, from KEYS[1] to KEYS[3] (or delete them
-- when KEYS[3] is absent), atomically per call: every entry is in exactly one place.
-- KEYS[2] is this call's receipt: if it already exists (a reconcile aborted the call) nothing
-- is done; otherwise the statuses are stored there, so a crashed caller's work can be settled.
-- ARGV[1]: max length of the target (0 = no limit); ARGV[2]: a tombstone unique to this call;
-- ARGV[3]: receipt lifetime in seconds; then triples (index hint, exact bytes, bytes to push).
-- Returns one status per triple: "ok", "missing" (not in the source any more) or "full"
-- (target at max length, entry left) -- or the single status "aborted".
local source, receipt, target = KEYS[1], KEYS[2], KEYS[3]
local max_len, tombstone, receipt_ttl = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', receipt) == 1 then
  return {'aborted'}
end

-- HSI appends to DLQs (RPUSH) and the console only removes, so an entry can only have moved
-- towards the head since it was seen: search no further than just past its hint.
local SLACK = 1000
local function locate(hint, raw)
  if hint >= 0 and redis.call('LINDEX', source, hint) == raw then
    return hint
  end
  if hint >= 0 then
    return redis.call('LPOS', source, raw, 'MAXLEN', hint + SLACK)
  end
  return redis.call('LPOS', source, raw)
end

local function remove_at(pos)
  local len = redis.call('LLEN', source)
  if pos == 0 then
    redis.call('LPOP', source)
  elseif pos == len - 1 then
    redis.call('RPOP', source)
  else
    redis.call('LSET', source, pos, tombstone)
    redis.call('LREM', source, (pos < len / 2) and 1 or -1, tombstone)
  end
end

if target then
  -- A wrong-typed target would fail the RPUSH after the entry left the source: check first.
  local kind = redis.call('TYPE', target)['ok']
  if kind ~= 'list' and kind ~= 'none' then
    return redis.error_reply(target .. ' is a ' .. kind .. ', not a list: nothing was moved')
  end
end

local results = {}
local target_len = target and redis.call('LLEN', target) or 0
for i = 4, #ARGV, 3 do
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
redis.call('SET', receipt, table.concat(results, ','), 'EX', receipt_ttl)
return results
