-- Act on a window of entries at the head of a DLQ and move the rest, in order, to its tail, in one
-- atomic step: how a filtered retry or delete (or a delete-all) works through a list of any size.
-- Removing an entry from the middle of a Redis list costs a scan from the nearer end (LREM, about
-- 0.15 us per entry passed, 73 ms from the middle of 1M entries), so entries the action leaves
-- alone are not left ahead of the next window: each call only ever touches the head and the tail.
--
-- KEYS[1] the DLQ; KEYS[2] this call's receipt (as in move.lua: if it exists, a reconcile aborted
-- the call and nothing is done; else the statuses are stored there); KEYS[3] the target of a
-- retry, absent for a delete.
-- ARGV[1] max length of the target (0 = no limit); ARGV[2] receipt lifetime in seconds; ARGV[3]
-- one letter per entry of the window, 'a' act on it or 'k' keep it; then the window's entries as
-- the caller read them (exact bytes), one per letter; then, for a retry, the bytes to push for each
-- 'a', in order.
--
-- The window is compared byte for byte with the head of the DLQ and handled up to the first entry
-- that differs ("stale": another operator got there first; the caller reads the head again) or the
-- first 'a' that no longer fits the target ("full"); else "more". Returns {handled, stop}, or
-- {0, "aborted"}. The receipt holds one status per 'a': "ok" (acted on) or "missing" (not reached).
local source, receipt, target = KEYS[1], KEYS[2], KEYS[3]
local max_len, receipt_ttl, flags = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local size = #flags
local ACT = string.byte('a')

if redis.call('EXISTS', receipt) == 1 then
  return {0, 'aborted'}
end
local wrong = target and wrong_type(target, 'list', 'moved')
if wrong then
  return redis.error_reply(wrong)
end

local room = math.huge
if target and max_len > 0 then
  room = math.max(max_len - redis.call('LLEN', target), 0)
end

local head = redis.call('LRANGE', source, 0, size - 1)
local pushed, kept, statuses = {}, {}, {}
local handled, stop, acts = 0, 'more', 0
for i = 1, size do
  local act = string.byte(flags, i) == ACT
  if head[i] ~= ARGV[3 + i] then
    stop = 'stale'
    break
  end
  if act and acts >= room then
    stop = 'full'
    break
  end
  if act then
    acts = acts + 1
    statuses[acts] = 'ok'
    if target then
      pushed[acts] = ARGV[3 + size + acts]
    end
  else
    kept[#kept + 1] = head[i]
  end
  handled = i
end
for i = handled + 1, size do
  if string.byte(flags, i) == ACT then
    statuses[#statuses + 1] = 'missing'
  end
end

if handled > 0 then
  redis.call('LTRIM', source, handled, -1)
  push_all(source, kept)
  if target then
    push_all(target, pushed)
  end
end
redis.call('SET', receipt, table.concat(statuses, ','), 'EX', receipt_ttl)
head, kept, pushed = nil, nil, nil
release(given(4)) -- the window as sent: what was read is the same strings
return {handled, stop}
