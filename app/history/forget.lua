-- Forget one customer (see docs/redis-keys.md): delete their hash and membership entry and
-- leave a tombstone (the id's SHA-1, scored by the forget time) that makes the recording
-- script ignore the customer's records made up to then (a spool replayed later).
--
-- KEYS[1] customer hash, KEYS[2] forgotten set, then the customer's behaviour keys, deleted
-- too (docs/events.md; all of the same hash tag)
-- ARGV[1] customer id, ARGV[2] membership key prefix, ARGV[3] now (epoch ms),
-- ARGV[4] tombstones older than this (epoch ms) are dropped
-- Returns 1 if the customer was known, else 0.

local state = redis.call('HMGET', KEYS[1], 's', 'n')
local seg, n = state[1], state[2]
if seg and n then
  local head = ARGV[2] .. seg
  if redis.call('HDEL', head .. '>' .. math.floor(tonumber(n) / 128), n) == 1 then
    redis.call('HINCRBY', head, 'c', -1)
  end
end
local known = redis.call('DEL', KEYS[1])
for i = 3, #KEYS do
  known = known + redis.call('DEL', KEYS[i])
end
redis.call('ZADD', KEYS[2], ARGV[3], redis.sha1hex(ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
return math.min(known, 1)
