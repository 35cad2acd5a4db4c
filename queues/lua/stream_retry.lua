-- Move stream DLQ entries (by id) back to their stream, atomically per call.
-- KEYS[1] the DLQ stream, KEYS[2] the source stream; ARGV[1] HSI's MAXLEN of the source (0 = none);
-- ARGV[2..] entry ids. The DLQ's own fields are dropped; the original fields are re-added with a
-- new id (no MAXLEN: nothing is trimmed here). The source is "full" once HSI's next XADD MAXLEN
-- would trim an entry a consumer group has not processed (stream_room). Each id is looked up
-- (XRANGE id id) in the same atomic step, so an entry is never retried twice. Returns one status
-- per id: "ok", "missing", "full" or "empty" (no original fields to re-add; the entry stays).
local wrong = wrong_type(KEYS[2], 'stream', 'retried')
if wrong then
  return redis.error_reply(wrong)
end
local room = stream_room(KEYS[2], tonumber(ARGV[1]), #ARGV - 1)
local results, spent = {}, 0
for i = 2, #ARGV do
  local status = 'ok'
  local found = redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])
  spent = spent + (found[1] and entry_size(found[1]) or 0)
  if #found == 0 then
    status = 'missing'
  elseif room == 0 then
    status = 'full'
  else
    status = retry_stream_entry(KEYS[1], KEYS[2], found[1])
    if status == 'ok' then
      room = room - 1
    end
  end
  results[#results + 1] = status
end
release(spent)
return results
