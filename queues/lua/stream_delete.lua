-- Delete stream entries by id from KEYS[1] (XDEL), atomically per call: every entry is either still
-- in the stream or deleted, and the caller's archive rows can be settled from the receipt.
-- KEYS[2] is this call's receipt (the protocol of move.lua): if it already exists (a reconcile
-- aborted the call) nothing is done; otherwise the statuses are stored there.
-- ARGV[1]: receipt lifetime in seconds; ARGV[2..]: entry ids.
-- Returns one status per id: "ok" or "missing" (not in the stream any more) -- or the single
-- status "aborted".
local stream, receipt = KEYS[1], KEYS[2]
if redis.call('EXISTS', receipt) == 1 then
  return {'aborted'}
end
local wrong = wrong_type(stream, 'stream', 'deleted')
if wrong then
  return redis.error_reply(wrong)
end
local results = {}
for i = 2, #ARGV do
  results[#results + 1] = (redis.call('XDEL', stream, ARGV[i]) == 1) and 'ok' or 'missing'
end
redis.call('SET', receipt, table.concat(results, ','), 'EX', ARGV[1])
return results
