-- Apply behaviour events to the running aggregates of the customers of one shard, atomically
-- and idempotently (see docs/events.md and docs/redis-keys.md).
--
-- KEYS: per customer c (1..C), KEYS[3c-2] aggregates hash (f first at, l last at, o orders,
--   m net amount, w reference of the last seeding), KEYS[3c-1] events hash (event id ->
--   'at|amount|order key'), KEYS[3c] orders set (order keys counted)
-- ARGV[1] '1': an order key is counted once (the model's log has an order column), '0': every
--   event is an order;  ARGV[2] C
-- then per event: customer index (1..C), event id, at (epoch us), signed amount, order key
--
-- Returns one status per event (1 applied, 0 duplicate: its id was applied before, 2 late:
-- older than the customer's last seeding, whose log holds that period), then per customer
-- its aggregates after the call: f, l, o, m (f false for a customer with no event yet).

local counting = ARGV[1] == '1'
local ncust = tonumber(ARGV[2])
local agg = {}
for c = 1, ncust do
  local v = redis.call('HMGET', KEYS[3 * c - 2], 'f', 'l', 'o', 'm', 'w')
  agg[c] = {
    f = tonumber(v[1]), l = tonumber(v[2]), o = tonumber(v[3]) or 0,
    m = tonumber(v[4]) or 0, w = tonumber(v[5]), dirty = false,
  }
end

local out = {}
local p = 3
while p <= #ARGV do
  local c, id, at_s, amount_s, key = tonumber(ARGV[p]), ARGV[p + 1], ARGV[p + 2], ARGV[p + 3], ARGV[p + 4]
  p = p + 5
  local a, at = agg[c], tonumber(at_s)
  if a.w and at < a.w then
    out[#out + 1] = 2
  elseif redis.call('HSETNX', KEYS[3 * c - 1], id, at_s .. '|' .. amount_s .. '|' .. key) == 0 then
    out[#out + 1] = 0
  else
    out[#out + 1] = 1
    if not counting or redis.call('SADD', KEYS[3 * c], key) == 1 then
      a.o = a.o + 1
    end
    a.m = a.m + tonumber(amount_s)
    if not a.f or at < a.f then a.f = at end
    if not a.l or at > a.l then a.l = at end
    a.dirty = true
  end
end

for c = 1, ncust do
  local a = agg[c]
  if a.dirty then
    redis.call('HSET', KEYS[3 * c - 2], 'f', string.format('%.17g', a.f),
      'l', string.format('%.17g', a.l), 'o', a.o, 'm', string.format('%.17g', a.m))
  end
  if a.f then
    out[#out + 1] = string.format('%.17g', a.f)
    out[#out + 1] = string.format('%.17g', a.l)
    out[#out + 1] = tostring(a.o)
    out[#out + 1] = string.format('%.17g', a.m)
  else
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = false
    out[#out + 1] = false
  end
end
return out
