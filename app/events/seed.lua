-- Seed the running aggregates of customers of one shard from a transaction log read as of a
-- reference (``segments assign --input LOG --record``; docs/events.md). The log is the truth
-- for everything before the reference: its aggregates replace the stored ones, and of the
-- events posted before, only those at or after the reference (not in the log) are applied
-- again on top; the others are forgotten (a later copy of one is late, not applied).
--
-- KEYS: per customer c, as apply.lua: aggregates hash, events hash, orders set
-- ARGV[1] '1': order keys are counted once, '0': every event is an order
-- ARGV[2] reference (epoch us, exclusive)
-- then per customer: f, l, o, m of the log, N, then N order keys of the log
--
-- Returns per customer the number of posted events kept (at or after the reference).

local counting = ARGV[1] == '1'
local ref = tonumber(ARGV[2])
local out = {}
local p, c = 3, 0
while p <= #ARGV do
  c = c + 1
  local hash, events, orders = KEYS[3 * c - 2], KEYS[3 * c - 1], KEYS[3 * c]
  local f, l, o, m = tonumber(ARGV[p]), tonumber(ARGV[p + 1]), tonumber(ARGV[p + 2]), tonumber(ARGV[p + 3])
  local n = tonumber(ARGV[p + 4])
  p = p + 5
  redis.call('DEL', orders)
  for i = p, p + n - 1, 500 do
    redis.call('SADD', orders, unpack(ARGV, i, math.min(i + 499, p + n - 1)))
  end
  p = p + n
  local kept = 0
  local posted = redis.call('HGETALL', events)
  for i = 1, #posted, 2 do
    local at_s, amount_s, key = string.match(posted[i + 1], '^([^|]*)|([^|]*)|(.*)$')
    local at = tonumber(at_s)
    if at < ref then
      redis.call('HDEL', events, posted[i])
    else
      kept = kept + 1
      if not counting or redis.call('SADD', orders, key) == 1 then o = o + 1 end
      m = m + tonumber(amount_s)
      if at < f then f = at end
      if at > l then l = at end
    end
  end
  redis.call('HSET', hash, 'f', string.format('%.17g', f), 'l', string.format('%.17g', l),
    'o', o, 'm', string.format('%.17g', m), 'w', string.format('%.17g', ref))
  out[#out + 1] = kept
end
return out
