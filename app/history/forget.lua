-- Forget one customer (see docs/redis-keys.md): delete their hash and membership entry and
-- leave a tombstone (the id's SHA-1, scored by the forget time) that makes the recording
-- script ignore the customer's records made up to then (a spool replayed later). A customer
-- in a segment leaves it with a last stream entry (``to`` empty), so that the consumers and
-- the webhooks (``segment.exited``, ``to_segment`` null) forget them too.
--
-- KEYS[1] customer hash, KEYS[2] forgotten set, KEYS[3] the shard's event stream, KEYS[4] its
-- registry, then the customer's behaviour keys, deleted too (docs/events.md; all of the same
-- hash tag)
-- ARGV[1] customer id, ARGV[2] membership key prefix, ARGV[3] now (epoch ms),
-- ARGV[4] tombstones older than this (epoch ms) are dropped, ARGV[5] the stream's cap
-- Returns 1 if the customer was known, else 0.

local state = redis.call('HMGET', KEYS[1], 's', 'n', 'v', 'q')
local seg, n, v, q = state[1], state[2], state[3], state[4]
if seg and n then
  local head = ARGV[2] .. seg
  if redis.call('HDEL', head .. '>' .. math.floor(tonumber(n) / 128), n) == 1 then
    redis.call('HINCRBY', head, 'c', -1)
  end
end
if seg then
  local version = (v and redis.call('HGET', KEYS[4], 'v<' .. v)) or ''
  local rid = 'forget-' .. string.sub(redis.sha1hex(ARGV[1]), 1, 12) .. '-' .. ARGV[3]
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'customer_id', ARGV[1],
    'from', seg, 'to', '', 'model_version', version, 'assigned_at', ARGV[3],
    'record_id', rid, 'seq', tostring((tonumber(q) or 0) + 1))
end
local known = redis.call('DEL', KEYS[1])
for i = 5, #KEYS do
  known = known + redis.call('DEL', KEYS[i])
end
redis.call('ZADD', KEYS[2], ARGV[3], redis.sha1hex(ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return math.min(known, 1)
