-- Record one segment assignment of one customer, atomically (see docs/redis-keys.md).
--
-- KEYS[1] current hash   KEYS[2] history list   KEYS[3] flow hash of the time bucket
-- KEYS[4] event stream   (all four share one hash tag; so do the membership sets below)
-- ARGV[1] record id (32 lowercase hex, time-ordered)   ARGV[2] customer id
-- ARGV[3] segment id     ARGV[4] segment name ('' = none)   ARGV[5] model version
-- ARGV[6] assigned at (epoch ms)   ARGV[7] membership entry '<at:013d>:<customer id>'
-- ARGV[8] membership key prefix (the tag's 'm:'; the segment id is appended)
-- ARGV[9] history cap   ARGV[10] history TTL ms   ARGV[11] flow bucket expiry (epoch ms)
-- ARGV[12] stream MAXLEN (approximate)   ARGV[13] history entry tail (JSON after 'from')
--
-- Returns {changed (0/1), previous segment or nil, duplicate (0/1)}.

local cur, hist, flow, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local rid, cid, seg, name, ver, at = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local state = redis.call('HMGET', cur, 'segment', 'name', 'member', 'seq', 'rid')
local prev, prev_name, prev_member, last = state[1], state[2], state[3], state[5]
local seq = tonumber(state[4] or '0') or 0

-- Byte-wise comparison of equal-width ids (Lua's '<' on strings follows the server's locale).
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end

-- Idempotency: a record not newer than the last one applied (a replay, or a stale record)
-- changes nothing, so replaying a spool after a partial write counts each migration once.
if last and not newer(rid, last) then
  return {0, prev, 1}
end

if prev == seg then
  redis.call('HSET', cur, 'assigned_at', at, 'version', ver, 'name', name, 'rid', rid)
  return {0, prev, 0}
end

seq = seq + 1
redis.call('HSET', cur, 'segment', seg, 'name', name, 'version', ver, 'assigned_at', at,
  'since', at, 'member', ARGV[7], 'seq', seq, 'rid', rid)

if prev and prev_member then
  redis.call('ZREM', ARGV[8] .. prev, prev_member)
end
redis.call('ZADD', ARGV[8] .. seg, 0, ARGV[7])

local from_json = prev and cjson.encode(prev) or 'null'
local from_name_json = (prev_name and prev_name ~= '') and cjson.encode(prev_name) or 'null'
redis.call('LPUSH', hist, '{"from":' .. from_json .. ',"from_name":' .. from_name_json ..
  ',"seq":' .. seq .. ',' .. ARGV[13])
redis.call('LTRIM', hist, 0, tonumber(ARGV[9]) - 1)
redis.call('PEXPIRE', hist, ARGV[10])

redis.call('HINCRBY', flow, (prev or '') .. '>' .. seg, 1)
redis.call('PEXPIREAT', flow, ARGV[11])

redis.call('XADD', stream, 'MAXLEN', '~', ARGV[12], '*',
  'type', 'segment_change', 'customer_id', cid,
  'from', prev or '', 'from_name', prev_name or '', 'to', seg, 'to_name', name,
  'model_version', ver, 'assigned_at', at, 'record_id', rid, 'seq', seq)

return {1, prev, 0}
