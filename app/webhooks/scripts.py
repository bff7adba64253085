"""The dispatcher's Lua scripts: each step that must not be half done is one script."""

# Fan-out of stream entries: append each endpoint's events to its list (the queue, or the
# dead letters of a disabled endpoint) up to a bound, then acknowledge the entries. Atomic:
# a crash leaves the entries pending (read again, pushed once), never pushed and unacked.
# An endpoint deleted since the caller listed them is skipped.
# KEYS[1] stream, KEYS[2] subscriptions hash, then (list, status) per endpoint.
# ARGV[1] group, ARGV[2] bound, ARGV[3] N, N entry ids, then per endpoint: id, count, events.
FANOUT = """
local p, nids = 4, tonumber(ARGV[3])
local ids = {}
for i = 1, nids do ids[i] = ARGV[p]; p = p + 1 end
local bound = tonumber(ARGV[2])
for k = 3, #KEYS, 2 do
  local id, n = ARGV[p], tonumber(ARGV[p + 1]); p = p + 2
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    local room = bound - redis.call('LLEN', KEYS[k])
    local dropped = 0
    for i = 1, n do
      if i <= room then redis.call('RPUSH', KEYS[k], ARGV[p + i - 1]) else dropped = dropped + 1 end
    end
    if dropped > 0 then redis.call('HINCRBY', KEYS[k + 1], 'dropped', dropped) end
  end
  p = p + n
end
if nids > 0 then redis.call('XACK', KEYS[1], ARGV[1], unpack(ids)) end
return nids
"""

# The end of a batch, only by the lease's holder: delivered (pop it, count it) or dead
# (move it to the dead letters; 'disable' also moves the whole queue and disables).
# KEYS lease, queue, status, dead. ARGV token, n, outcome (ok|dead|disable), now, reason.
FINISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local n = tonumber(ARGV[2])
local items = redis.call('LPOP', KEYS[2], n)
if not items then return 0 end
if ARGV[3] == 'ok' then
  redis.call('HINCRBY', KEYS[3], 'delivered', #items)
  redis.call('HSET', KEYS[3], 'ok_at', ARGV[4], 'failures', 0)
  redis.call('HDEL', KEYS[3], 'failing_since')
  return #items
end
for i = 1, #items do redis.call('RPUSH', KEYS[4], items[i]) end
redis.call('HSET', KEYS[3], 'dead_at', ARGV[4], 'dead_reason', ARGV[5])
if ARGV[3] == 'disable' then
  local rest = redis.call('LRANGE', KEYS[2], 0, -1)
  for i = 1, #rest do redis.call('RPUSH', KEYS[4], rest[i]) end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[3], 'disabled_at', ARGV[4], 'disabled_reason', ARGV[5])
end
return #items
"""

# Take or keep the lease: set it if free, extend it if ours. ARGV token, lifetime ms.
LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
