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

-- How many entries may be added to the stream `key` (for a call adding up to `adding`) before
-- HSI's next XADD MAXLEN `max_len` would trim one that a consumer group has not processed; -1 when
-- there is no limit (max_len 0). HSI trims a stream rather than refusing it, and entries every
-- group has processed are history it trims on each XADD anyway, so a stream at MAXLEN whose groups
-- keep up still has room. What a group has not processed runs from its oldest pending entry (read,
-- not acknowledged) to the tail: the entries up to its last delivered one, counted by a bounded
-- XRANGE (pending entries are normally the last few delivered), plus its lag (not read yet); they
-- survive `r` more entries while that count + r <= max_len. A pending entry further back is placed
-- by a bounded XRANGE from the head instead (conservatively when it is further still). With no
-- group, or a lag Redis cannot tell, every entry counts as unprocessed: room is max_len - XLEN.
local TRIM_LOOKAHEAD = 250 -- entries an XRANGE reads at most to place a group's oldest pending one

local function stream_room(key, max_len, adding)
  if max_len <= 0 then
    return -1
  end
  local length = redis.call('XLEN', key)
  local groups = length > 0 and redis.call('XINFO', 'GROUPS', key) or {}
  if #groups == 0 then
    return math.max(math.min(max_len - length, adding), 0)
  end
  local unprocessed = 0 -- the most entries, from some group's oldest unprocessed one to the tail
  for _, reply in ipairs(groups) do
    local group = {}
    for i = 1, #reply, 2 do
      group[reply[i]] = reply[i + 1]
    end
    local lag, count = group['lag'], nil
    if type(lag) ~= 'number' then
      count = length
    elseif group['pending'] == 0 then
      count = lag
    else
      local oldest = redis.call('XPENDING', key, group['name'])[2]
      local delivered = group['last-delivered-id']
      local between = #redis.call('XRANGE', key, oldest, delivered, 'COUNT', TRIM_LOOKAHEAD)
      if between < TRIM_LOOKAHEAD then
        count = lag + between
      else -- far back: HSI trims length + r - max_len from the head; count what lies before it
        local wanted = math.min(length + math.min(adding, max_len) - max_len, TRIM_LOOKAHEAD)
        local before = wanted > 0 and #redis.call('XRANGE', key, '-', '(' .. oldest, 'COUNT', wanted) or 0
        count = wanted > 0 and length - before or lag
      end
    end
    unprocessed = math.max(unprocessed, count)
  end
  return math.max(math.min(max_len - unprocessed, adding), 0)
end
