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
-- keep up still has room. Unread entries are the newest `lag` of a group: they survive `r` more
-- entries while lag + r <= max_len. A pending entry (read, not acknowledged) survives while fewer
-- than its position from the head are trimmed, which a bounded XRANGE from the head tells. With no
-- group, or a lag Redis cannot tell, every entry counts as unprocessed: room is max_len - XLEN.
local TRIM_LOOKAHEAD = 1000 -- entries read from the head at most to place the oldest pending one

-- Whether stream entry id `a` ("<ms>-<seq>", each part up to 2^64 - 1) comes before `b`: the
-- parts compared as decimal strings (by length, then by text), as Lua's doubles lose precision.
local function id_before(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  local function less(x, y)
    return #x < #y or (#x == #y and x < y)
  end
  return less(a_ms, b_ms) or (a_ms == b_ms and less(a_seq, b_seq))
end

local function stream_room(key, max_len, adding)
  if max_len <= 0 then
    return -1
  end
  local length = redis.call('XLEN', key)
  local room, oldest = max_len - length, nil
  local groups = length > 0 and redis.call('XINFO', 'GROUPS', key) or {}
  if #groups > 0 then
    room = max_len
    for _, reply in ipairs(groups) do
      local group = {}
      for i = 1, #reply, 2 do
        group[reply[i]] = reply[i + 1]
      end
      if type(group['lag']) ~= 'number' then
        room = max_len - length
        break
      end
      room = math.min(room, max_len - group['lag'])
      if group['pending'] > 0 then
        local first = redis.call('XPENDING', key, group['name'])[2]
        if first and (not oldest or id_before(first, oldest)) then
          oldest = first
        end
      end
    end
  end
  room = math.max(math.min(room, adding), 0)
  if oldest and room > 0 then
    -- After adding r, HSI trims length + r - max_len entries from the head; the oldest pending
    -- entry is at position `before` (entries older than it), so r <= before + max_len - length.
    local wanted = math.min(length + room - max_len, TRIM_LOOKAHEAD)
    if wanted > 0 then
      local before = #redis.call('XRANGE', key, '-', '(' .. oldest, 'COUNT', wanted)
      room = math.max(math.min(room, before + max_len - length), 0)
    end
  end
  return room
end
