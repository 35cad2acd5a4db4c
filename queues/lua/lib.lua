-- Helpers every queue script starts with: queues.scripts prepends this file to each one.

-- Why `key` cannot be written as a `wanted` ('list' or 'stream'), or nil when it can be (it is one,
-- or absent). Scripts check before anything moves: a command on a wrong-typed key fails the script
-- midway, after the call's earlier writes have happened.
local function wrong_type(key, wanted, nothing_was)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= wanted and kind ~= 'none' then
    return key .. ' is a ' .. kind .. ', not a ' .. wanted .. ': nothing was ' .. nothing_was
  end
  return nil
end

-- Append `items` to the list `key`, 1000 per RPUSH (Lua's unpack has a stack limit).
local function push_all(key, items)
  for i = 1, #items, 1000 do
    redis.call('RPUSH', key, unpack(items, i, math.min(i + 999, #items)))
  end
end

