-- Seed the running aggregates of customers of one shard from a transaction log read as of a
-- reference (``segments assign --input LOG --record``; docs/events.md). The log is the truth
-- for everything before the reference: its aggregates replace the stored ones, and of the
-- events posted before, only those at or after the reference (not in the log) are applied
-- again on top; the others are forgotten (a later copy of one is late, not applied).
--
-- KEYS[c]: customer c's behaviour hash (as apply.lua)
-- ARGV[1] '1': order keys are counted once, '0': every event is an order
-- ARGV[2] reference (epoch us, exclusive)
-- ARGV[3] the bound of the net amount (2^63, as apply.lua's): a kept event that would take its
--   magnitude to it or beyond on top of the log's is forgotten too (a re-send is then refused)
-- then per customer: f, l, o, m of the log (f and l '' for a customer whose lines before the
--   reference are all refunds: no purchase time), N, then N order keys of the log (of its
--   purchases)
--
-- Returns per customer five values: the number of posted events kept (at or after the
-- reference), then, where it kept some and the customer has a purchase, the aggregates with
-- them (f, l, o, m as text; false where it kept none: the log's are the aggregates).

local counting = ARGV[1] == '1'
local ref = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local out = {}
local p = 4
for c = 1, #KEYS do
  local hash = KEYS[c]
  -- f and l are '' for a customer whose lines before the reference are all refunds
  local f, l, o, m = tonumber(ARGV[p]), tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3])
  local n = tonumber(ARGV[p + 4])
  local orders = {}
  for i = p + 5, p + 4 + n do orders[ARGV[i]] = true end
  p = p + 5 + n
  -- the events posted at or after the reference stay (the log cannot hold them)
  local kept = {}
  local stored = redis.call('HGETALL', hash)
  for i = 1, #stored, 2 do
    local name = stored[i]
    if string.byte(name, 1) == 101 then
      local at_s, amount_s, key = string.match(stored[i + 1], '^([^|]*)|([^|]*)|(.*)$')
      local at = tonumber(at_s)
      local amount = tonumber(amount_s)
      if at >= ref and math.abs(m + amount) < limit then
        kept[#kept + 1] = {name, stored[i + 1]}
        -- a refund (negative, '-0.0' too) only lowers the net amount, as apply.lua counts it
        if string.byte(amount_s, 1) ~= 45 then
          if not counting or string.byte(key, 1) == 101 or not orders[key] then
            o = o + 1
            if counting then orders[key] = true end
          end
          if not f or at < f then f = at end
          if not l or at > l then l = at end
        end
        m = m + amount
      end
    end
  end
  redis.call('DEL', hash)
  local fields = {'o', o, 'm', string.format('%.17g', m), 'w', string.format('%.17g', ref)}
  if f then  -- a purchase, in the log or kept: the purchase times
    local n = #fields
    fields[n + 1], fields[n + 2] = 'f', string.format('%.17g', f)
    fields[n + 3], fields[n + 4] = 'l', string.format('%.17g', l)
  end
  for _, e in ipairs(kept) do
    fields[#fields + 1] = e[1]
    fields[#fields + 1] = e[2]
  end
  if counting then
    for key in pairs(orders) do
      if string.byte(key, 1) ~= 101 then
        fields[#fields + 1] = 'k' .. key
        fields[#fields + 1] = '1'
      end
    end
  end
  for i = 1, #fields, 1000 do
    redis.call('HSET', hash, unpack(fields, i, math.min(i + 999, #fields)))
  end
  local at = 5 * (c - 1)
  out[at + 1] = #kept
  if #kept > 0 and f then
    out[at + 2], out[at + 3] = string.format('%.17g', f), string.format('%.17g', l)
    out[at + 4], out[at + 5] = tostring(o), string.format('%.17g', m)
  else
    out[at + 2], out[at + 3], out[at + 4], out[at + 5] = false, false, false, false
  end
end
return out
