-- Apply behaviour events to the running aggregates of the customers of one shard, atomically
-- and idempotently (see docs/events.md and docs/redis-keys.md).
--
-- KEYS[c]: customer c's behaviour hash (c = 1..C): f first purchase at, l last purchase at
--   (a purchase: an amount of zero or more; a refund changes only m), o orders bought, m net
--   amount, w as-of date of the last seeding; 'e<event id>' -> 'at|amount|order key' for each
--   event applied since; 'k<order key>' for each order counted (orders with an id)
-- ARGV[1] '1': an order key is counted once (the model's log has an order column), '0': every
--   event is an order
-- ARGV[2] the bound of the net amount (2^63, NUMBER_LIMIT): an event that would take its
--   magnitude to it or beyond is not applied (status 3)
-- then per customer c, in KEYS order: its number of events N, then N times: event id, at
--   (epoch us), signed amount, order key (the caller groups a customer's events, in order)
--
-- Returns one status per event, in the order sent (1 applied, 0 duplicate: its id was applied
-- before, 2 late: older than the customer's last seeding, whose log holds that period, 3 beyond:
-- it would take the net amount to the bound or beyond, not applied, 4 conflict: its id was
-- applied before with another time, amount or order key, so it is not a re-send), then
-- per customer its aggregates after the call: f, l, o as integers, m as text (false for a
-- customer with no purchase yet).
--
-- Two Redis calls per customer whatever its number of events: one HMGET reads its aggregates
-- with the guard fields of all its events (event ids, order keys), one HSET writes the
-- aggregates with the new guard fields. (An HSETNX per event and per order cost a call each;
-- in Redis's Lua a call, a table or a string.format is a sizeable part of the work.) First and
-- last are kept as the text they came as (integers: what '%.17g' would write again).

local counting = ARGV[1] == '1'
local limit = tonumber(ARGV[2])
local out, s = {}, 0  -- the statuses; the customers' aggregates follow them
local tail = {}
local start = 3
for c = 1, #KEYS do
  local hash, count = KEYS[c], tonumber(ARGV[start])
  local first, last = start + 1, start + 4 * count
  start = last + 1
  local names, n = {'f', 'l', 'o', 'm', 'w'}, 5
  for p = first, last, 4 do
    n = n + 1
    names[n] = 'e' .. ARGV[p]
    local key = ARGV[p + 3]
    -- an event without an order id ('e' key) is an order of its own: its id guards it already
    if counting and string.byte(key, 1) ~= 101 then
      n = n + 1
      names[n] = 'k' .. key
    end
  end
  local v = redis.call('HMGET', hash, unpack(names, 1, n))
  local f_s, l_s, w = v[1], v[2], tonumber(v[5])
  local f, l, o, m = tonumber(f_s), tonumber(l_s), tonumber(v[3]) or 0, tonumber(v[4]) or 0
  local new, k = {}, 8  -- the HSET's arguments; the aggregates take the first eight
  local seen  -- event ids (-> what was applied) and order keys applied in this call
  local j = 5
  for p = first, last, 4 do
    local id, at_s, amount_s, key = ARGV[p], ARGV[p + 1], ARGV[p + 2], ARGV[p + 3]
    local lone = not counting or string.byte(key, 1) == 101
    j = j + 1
    local stored_event, stored_order = v[j], false
    if not lone then
      j = j + 1
      stored_order = v[j]
    end
    local at = tonumber(at_s)
    local status
    local before = stored_event or (seen and seen['e' .. id])
    if w and at < w then
      status = 2
    elseif before then
      status = before == at_s .. '|' .. amount_s .. '|' .. key and 0 or 4
    elseif math.abs(m + tonumber(amount_s)) >= limit then
      status = 3
    else
      status = 1
      local applied = at_s .. '|' .. amount_s .. '|' .. key
      if count > 1 then
        seen = seen or {}
        seen['e' .. id] = applied
      end
      new[k + 1] = names[j - (lone and 0 or 1)]
      new[k + 2] = applied
      k = k + 2
      local amount = tonumber(amount_s)
      -- a refund (negative, '-0.0' too: its sign read from the text) only lowers the net
      -- amount: no order, no purchase time
      local bought = string.byte(amount_s, 1) ~= 45
      if not bought then
      elseif lone then
        o = o + 1
      elseif not stored_order and not (seen and seen[key]) then
        o = o + 1
        new[k + 1] = names[j]
        new[k + 2] = '1'
        k = k + 2
        if seen then seen[key] = true end
      end
      m = m + amount
      if bought then
        if not f or at < f then f, f_s = at, at_s end
        if not l or at > l then l, l_s = at, at_s end
      end
    end
    s = s + 1
    out[s] = status
  end
  local t = #tail
  local m_s = k > 8 and string.format('%.17g', m) or v[4] or '0'
  if k > 8 then
    new[5], new[6], new[7], new[8] = 'o', o, 'm', m_s
    if f then
      new[1], new[2], new[3], new[4] = 'f', f_s, 'l', l_s
      redis.call('HSET', hash, unpack(new, 1, k))
    else  -- refunds only so far: their net amount, guarded, waits for a purchase
      redis.call('HSET', hash, unpack(new, 5, k))
    end
  end
  if f then
    -- times and orders are whole numbers (epoch us < 2^53: exact), returned as integers
    tail[t + 1], tail[t + 2], tail[t + 3], tail[t + 4] = f, l, o, m_s
  else
    tail[t + 1], tail[t + 2], tail[t + 3], tail[t + 4] = false, false, false, false
  end
end

for i = 1, #tail do out[s + i] = tail[i] end
return out
