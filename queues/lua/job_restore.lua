-- Put one archived job key, or one job's index entries, back.
-- KEYS[1] is the call's receipt, KEYS[2] the job key, KEYS[3..] the index sorted sets.
-- ARGV[1] receipt TTL, ARGV[2] "key" or "index", ARGV[3] the value (kind "key") or the job id,
-- ARGV[4..] one score per index (kind "index"). A key is only set when absent (never overwrites a
-- job HSI wrote since), without a TTL as it was. Returns (and stores in the receipt) 1 when
-- restored, 0 when not, -1 when fenced off.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return -1
end
local restored = 0
if ARGV[2] == 'key' then
  if redis.call('SET', KEYS[2], ARGV[3], 'NX') then
    restored = 1
  end
else
  for i = 3, #KEYS do
    redis.call('ZADD', KEYS[i], ARGV[i + 1], ARGV[3])
  end
  restored = 1
end
redis.call('SET', KEYS[1], restored, 'EX', ARGV[1])
return restored
