"""The dispatcher's Lua scripts: each step that must not be half done is one script."""

# Fan-out of stream entries: read them with the consumer group, turn each into its webhook
# events (JSON, encoded once here), append each event to the list of every endpoint that
# wants it (the queue, or the dead letters of a disabled endpoint) up to a bound, then
# acknowledge the entries. The entries never cross to the dispatcher (its CPU is the API
# worker's when it runs in ``segments serve``). Atomic: a crash leaves the entries unread or
# pending (read again, pushed once), never pushed and unacked. An endpoint deleted since the
# caller listed them is skipped. A migration gives ``segment.exited`` (of the segment left;
# none for a first assignment) then ``segment.entered``; a forgotten customer's last entry
# (``to`` empty) only ``segment.exited``; event ids are stable: the record id and the type.
# KEYS[1] stream, KEYS[2] subscriptions hash, KEYS[3] their version counter, then (list,
# status) per endpoint.
# ARGV[1] group, ARGV[2] consumer, ARGV[3] start ('0': this consumer's pending entries;
# '>': new ones), ARGV[4] count, ARGV[5] bound, ARGV[6] model name, ARGV[7] the version of
# the subscriptions listed, then per endpoint: id, wants entered (1|0), wants exited (1|0),
# its creation (epoch ms: it gets no entry recorded before; an entry id is its time in ms),
# number of segment ids (-1: all), the ids.
# Returns {entries read, the last entry id read (none read: the stream's last, or 0-0)};
# {-1, ''} when the subscriptions changed since that version (nothing read).
FANOUT = """
-- the caller's subscriptions are those of version ARGV[7]: a subscription made (or changed)
-- since must see the entries read now, so nothing is read and the caller reads them again
if (redis.call('GET', KEYS[3]) or '0') ~= ARGV[7] then return {-1, ''} end
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[4],
  'STREAMS', KEYS[1], ARGV[3])
local entries = (reply and reply[1] and reply[1][2]) or {}
local bound, model = tonumber(ARGV[5]), ARGV[6]
local subs, p = {}, 8
for k = 4, #KEYS, 2 do
  local sub = {list = KEYS[k], status = KEYS[k + 1], entered = ARGV[p + 1] == '1',
    exited = ARGV[p + 2] == '1', since = tonumber(ARGV[p + 3]), out = {}}
  local nseg = tonumber(ARGV[p + 4])
  if nseg >= 0 then
    sub.segs = {}
    for i = 1, nseg do sub.segs[ARGV[p + 4 + i]] = true end
  else nseg = 0 end
  if #entries > 0 and redis.call('HEXISTS', KEYS[2], ARGV[p]) == 1 then
    sub.room = bound - redis.call('LLEN', sub.list)
    subs[#subs + 1] = sub
  end
  p = p + 5 + nseg
end
-- (the group may lag behind the stream: no dispatcher reads while nobody subscribes)
local function offer(kind, segment, event, at)
  local text
  for _, sub in ipairs(subs) do
    if sub[kind] and at >= sub.since and (sub.segs == nil or sub.segs[segment]) then
      text = text or cjson.encode(event)
      sub.out[#sub.out + 1] = text
    end
  end
end
local ids = {}
for i, entry in ipairs(entries) do
  ids[i] = entry[1]
  local raw = entry[2]
  if raw then  -- false: trimmed from the stream before it was read
    local f = {}
    for j = 1, #raw, 2 do f[raw[j]] = raw[j + 1] end
    local rid, origin = f['record_id'], f['from']
    local recorded = tonumber(string.match(entry[1], '^%d+'))
    local event = {customer_id = f['customer_id'], ['from'] = cjson.null, to = f['to'],
      model = model, model_version = f['model_version'], at = tonumber(f['assigned_at']),
      seq = tonumber(f['seq']), record_id = rid}
    if origin ~= '' then
      event['from'], event.id, event.type, event.segment =
        origin, 'evt_' .. rid .. '_exited', 'segment.exited', origin
      offer('exited', origin, event, recorded)
    end
    if f['to'] ~= '' then  -- empty: the customer was forgotten, an exit only
      event.id, event.type, event.segment = 'evt_' .. rid .. '_entered', 'segment.entered', f['to']
      offer('entered', f['to'], event, recorded)
    end
  end
end
for _, sub in ipairs(subs) do
  local n = #sub.out
  local keep = math.max(0, math.min(n, sub.room))
  for s = 1, keep, 1000 do
    redis.call('RPUSH', sub.list, unpack(sub.out, s, math.min(s + 999, keep)))
  end
  if n > keep then redis.call('HINCRBY', sub.status, 'dropped', n - keep) end
end
for s = 1, #ids, 1000 do
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids, s, math.min(s + 999, #ids)))
end
if #ids > 0 then return {#ids, ids[#ids]} end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
return {0, (last[1] and last[1][1]) or '0-0'}
"""

# The end of a batch, only by the lease's holder: delivered (pop it, count it) or dead
# (move it to the dead letters; 'disable' also moves the whole queue and disables). The
# attempt that delivered it goes to the delivery log here too: one round trip per batch.
# A subscription deleted meanwhile (its keys gone with it) is left alone: nothing is written
# back for it. A lease that lapsed while the batch was out (the process stalled past its
# lifetime) and that nobody took is taken back, if the batch still heads the queue (nobody
# else popped it): else the batch would be sent again for nothing.
# KEYS lease, queue, status, dead, log, subscriptions. ARGV token, n, outcome
# (ok|dead|disable), now, reason, the attempt's log line ('': logged already), log size,
# subscription id, the batch's first item, the lease's lifetime ms.
FINISH = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return -1 end
if redis.call('HEXISTS', KEYS[6], ARGV[8]) == 0 then return 0 end
if not holder then
  if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[9] then return -1 end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[10])
end
if ARGV[6] ~= '' then
  redis.call('LPUSH', KEYS[5], ARGV[6])
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[7]) - 1)
end
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

# A failed attempt, in the delivery log and the status, unless the subscription was deleted
# meanwhile (a delete during the attempt removed its keys: they are not made again).
# KEYS subscriptions, log, status. ARGV subscription id, the attempt's log line, log size,
# now, the HTTP status ('' for none), the error.
NOTE_FAILURE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('HINCRBY', KEYS[3], 'failures', 1)
redis.call('HSETNX', KEYS[3], 'failing_since', ARGV[4])
redis.call('HSET', KEYS[3], 'fail_at', ARGV[4], 'fail_status', ARGV[5], 'fail_error', ARGV[6])
return 1
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
