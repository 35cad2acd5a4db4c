-- One step of putting a stopped run's DLQ back in order: move the first ARGV[1] entries of the
-- list KEYS[1] from its head to its tail, unread and in order, in one atomic call. A filtered run
-- moves the entries it examines and leaves to the tail (rotate.lua), so one that stops halfway has
-- them behind those it has not examined yet; moving those behind them restores the old order.
-- Whoever else acts meanwhile, the call moves what is at the head as one step: nothing is lost or
-- duplicated, and each call touches only the two ends of the list. It moves fewer once it has read
-- ARGV[2] bytes (read_range in lib.lua). Returns how many moved.
local key, count, budget = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2])
local wrong = wrong_type(key, 'list', 'moved')
if wrong then
  return redis.error_reply(wrong)
end
local head, spent = read_range(key, 0, count - 1, false, budget, LARGE_ENTRY) -- fewer after ARGV[2] bytes
local moved = #head
if moved > 0 then
  redis.call('LTRIM', key, moved, -1)
  push_all(key, head)
end
head = nil
release(spent)
return moved
