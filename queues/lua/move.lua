-- Move list entries, identified by their exact bytes, from KEYS[1] to KEYS[2] (or delete them
-- when KEYS[2] is absent), atomically per call: every entry is in exactly one place.
-- ARGV[1]: max length of the target (0 = no limit); ARGV[2]: a tombstone unique to this call;
-- then triples (index hint, exact bytes, bytes to push). Returns one status per triple:
-- "ok", "missing" (not in the source any more) or "full" (target at max length, entry left).
local source, target = KEYS[1], KEYS[2]
local max_len, tombstone = tonumber(ARGV[1]), ARGV[2]

local function locate(hint, raw)
  if hint >= 0 and redis.call('LINDEX', source, hint) == raw then
    return hint
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

local results = {}
local target_len = target and redis.call('LLEN', target) or 0
for i = 3, #ARGV, 3 do
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
return results
