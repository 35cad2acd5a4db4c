-- Retry a run of stream DLQ entries in one atomic step, reading them itself: retry-all's path when
-- no filter picks the entries (a filtered run reads in Python, which decides, and stream_retry.lua
-- moves by id). What it reads is what it moves, so no entry is retried twice, whoever else acts.
--
-- KEYS[1] the DLQ stream, KEYS[2] its source stream. ARGV[1] HSI's MAXLEN of the source (0 = none);
-- ARGV[2] where to start (XRANGE's start: '-', or '(' and the id to go on after); ARGV[3] how many
-- entries at most; ARGV[4] the bytes to read at most (one entry at least; read_stream in lib.lua);
-- ARGV[5] how many retried entries to send back (the audit's snapshot), their values over ARGV[6]
-- bytes as {size, head}.
--
-- Each entry is retried as stream_retry.lua retries one (its original fields re-added with a new
-- id, XDEL; "empty" when it has none, and it stays); the run stops at the first entry the source
-- has no room for ("full": HSI's next XADD MAXLEN would trim what a group has not processed).
-- Returns {{id, status, id, status, ...}, {entry...}}: every entry read with its status, in order,
-- then the sampled entries.
local source, target = KEYS[1], KEYS[2]
local max_len, start, count = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local budget, sample, whole = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local wrong = wrong_type(target, 'stream', 'retried')
if wrong then
  return redis.error_reply(wrong)
end
local room = stream_room(target, max_len, count)
local statuses, samples = {}, {}

local function retry(entry)
  local status = 'full'
  if room ~= 0 then
    status = retry_stream_entry(source, target, entry)
  end
  statuses[#statuses + 1] = entry[1]
  statuses[#statuses + 1] = status
  if status == 'full' then
    return false
  end
  if status == 'ok' then
    room = room - 1
    if #samples < sample then
      samples[#samples + 1] = cut_values(entry, whole)
    end
  end
end

local _, spent = read_stream(source, start, '+', count, false, budget, retry)
release(spent)
return {statuses, samples}
