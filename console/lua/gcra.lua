-- GCRA (a sliding window without buckets): KEYS[1] holds the bucket's "theoretical arrival
-- time" in ms. ARGV[1] = period in ms, ARGV[2] = limit per period, ARGV[3] = cost: 1 takes a
-- slot, 0 only looks (would one more be allowed?). A refusal never moves the time forward, so
-- hammering a full bucket does not extend the wait (a cool-off, not a lockout).
-- Returns {allowed (1/0), retry_after_ms}.
local period = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local interval = math.ceil(period / limit)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then
  tat = now
end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, allow_at - now}
end
if cost > 0 then
  redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
end
return {1, 0}
