-- Apply behaviour events to the running aggregates of the customers of one shard, atomically
-- and idempotently (see docs/events.md and docs/redis-keys.md).
--
-- KEYS[c]: customer c's behaviour hash (c = 1..C): f first at, l last at, o orders, m net
--   amount, w as-of date of the last seeding; 'e<event id>' -> 'at|amount|order key' for each
--   event applied since; 'k<order key>' for each order counted (orders with an id)
-- ARGV[1] '1': an order key is counted once (the model's log has an order column), '0': every
--   event is an order
-- then per event: customer index (1..C), event id, at (epoch us), signed amount, order key
--
-- Returns one status per event (1 applied, 0 duplicate: its id was applied before, 2 late:
-- older than the customer's last seeding, whose log holds that period), then per customer
-- its aggregates after the call: f, l, o as integers, m as text (false for a customer with no
-- event yet).

local counting = ARGV[1] == '1'
local agg = {}
for c = 1, #KEYS do
  local v = redis.call('HMGET', KEYS[c], 'f', 'l', 'o', 'm', 'w')
  agg[c] = {
    f = tonumber(v[1]), l = tonumber(v[2]), o = tonumber(v[3]) or 0,
    m = tonumber(v[4]) or 0, w = tonumber(v[5]), dirty = false,
  }
end

local out = {}
local n = #ARGV
for p = 2, n, 5 do
  local c, id, at_s, amount_s, key = tonumber(ARGV[p]), ARGV[p + 1], ARGV[p + 2], ARGV[p + 3], ARGV[p + 4]
  local a, at, hash = agg[c], tonumber(at_s), KEYS[c]
  if a.w and at < a.w then
    out[#out + 1] = 2
  elseif redis.call('HSETNX', hash, 'e' .. id, at_s .. '|' .. amount_s .. '|' .. key) == 0 then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    -- an event without an order id ('e' key) is an order of its own: its id is new already
    if not counting or string.byte(key, 1) == 101 or redis.call('HSETNX', hash, 'k' .. key, 1) == 1 then
      a.o = a.o + 1
    end
    a.m = a.m + tonumber(amount_s)
    if not a.f or at < a.f then a.f = at end
    if not a.l or at > a.l then a.l = at end
    a.dirty = true
  end
end

for c = 1, #KEYS do
  local a = agg[c]
  if a.f then
    local m = string.format('%.17g', a.m)
    if a.dirty then
      redis.call('HSET', KEYS[c], 'f', string.format('%.17g', a.f),
        'l', string.format('%.17g', a.l), 'o', a.o, 'm', m)
    end
    -- times and orders are whole numbers (epoch us < 2^53: exact), returned as integers
    out[#out + 1] = a.f
    out[#out + 1] = a.l
    out[#out + 1] = a.o
    out[#out + 1] = m
  else
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = false
  end
end
return out
