-- Delete one stale job key, or one job's expired index entries, exactly as they were archived.
-- KEYS[1] is the call's receipt, KEYS[2] the job key, KEYS[3..] the index sorted sets.
-- ARGV[1] receipt TTL, ARGV[2] "key" or "index", ARGV[3] the archived value (kind "key") or the
-- job id (kind "index"). If the receipt exists (a reconcile fenced the call off) nothing is done.
-- "ok": deleted; "changed": the value is not the archived one any more, or (index) the job key
-- came back; "gone": nothing was there. The status is stored in the receipt.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 'aborted'
end
local status = 'gone'
if ARGV[2] == 'key' then
  if redis.call('TYPE', KEYS[2]).ok == 'string' then
    if redis.call('GET', KEYS[2]) == ARGV[3] then
      redis.call('DEL', KEYS[2])
      status = 'ok'
    else
      status = 'changed'
    end
  elseif redis.call('EXISTS', KEYS[2]) == 1 then
    status = 'changed'
  end
else
  if redis.call('EXISTS', KEYS[2]) == 1 then
    status = 'changed'
  else
    for i = 3, #KEYS do
      if redis.call('ZREM', KEYS[i], ARGV[3]) == 1 then
        status = 'ok'
      end
    end
  end
end
redis.call('SET', KEYS[1], status, 'EX', ARGV[1])
return status
