-- How many entries the stream KEYS[1] can take, for ARGV[2] to be added, before HSI's next XADD
-- MAXLEN ARGV[1] would trim one a consumer group has not processed (see stream_room in lib.lua):
-- what a confirmation page states before a retry or restore to a stream. Reads only; a key of
-- another type gets the sentence the retry itself would give.
local wrong = wrong_type(KEYS[1], 'stream', 'done')
if wrong then
  return redis.error_reply(wrong)
end
return stream_room(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
