-- Record the segment assignments of many customers of one shard, atomically and in order
-- (see docs/redis-keys.md). One call applies each record exactly as if it were alone: a
-- customer's later record sees its earlier one.
--
-- KEYS[1] event stream, KEYS[2 .. F+1] flow hashes (one per time bucket), then for each
--   record its customer's current hash and history list (every key shares one hash tag;
--   so do the membership sets, named from ARGV[1])
-- ARGV[1] membership key prefix (the tag's 'm:'; a segment id is appended)
-- ARGV[2] history cap   ARGV[3] history TTL ms   ARGV[4] stream MAXLEN (approximate)
-- ARGV[5] F, then F flow expiry times (epoch ms), in the order of the flow keys
-- then T, then T assignments (segment id, segment name ('' = none), model version)
-- then 5 values per record: record id (32 lowercase hex, time-ordered), customer id,
--   assigned at (epoch ms), flow index (1..F), assignment index (1..T)
--
-- Returns 3 values per record: changed (0/1), previous segment or nil, duplicate (0/1); a
-- record that failed (a key of the wrong type) gives -1 and the error's text instead.

local stream = KEYS[1]
local prefix, cap, ttl, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local nflows = tonumber(ARGV[5])
local p = 6
local flow_expiry, flow_touched = {}, {}
for i = 1, nflows do
  flow_expiry[i] = ARGV[p]
  p = p + 1
end
local nassign = tonumber(ARGV[p])
p = p + 1
local segs, names, vers, seg_json, name_json, ver_json = {}, {}, {}, {}, {}, {}
for i = 1, nassign do
  segs[i], names[i], vers[i] = ARGV[p], ARGV[p + 1], ARGV[p + 2]
  seg_json[i] = cjson.encode(segs[i])
  name_json[i] = names[i] ~= '' and cjson.encode(names[i]) or 'null'
  ver_json[i] = cjson.encode(vers[i])
  p = p + 3
end

-- Is id a newer than id b? Both are 32 lowercase hex digits; compared 12 digits (48 bits, exact
-- in a Lua number) at a time, as numbers: Lua's '<' on strings follows the server's locale, and
-- a loop over bytes cost more than the rest of an unchanged record's work.
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a, 12 do
    local x, y = string.sub(a, i, i + 11), string.sub(b, i, i + 11)
    if x ~= y then return tonumber(x, 16) > tonumber(y, 16) end
  end
  return false
end

-- One record, as if alone: returns changed (0/1), previous segment (false: none), duplicate.
local function apply(cur, hist, rid, cid, at, a, f)
  local seg, name, ver = segs[a], names[a], vers[a]
  -- what an unchanged record needs first; the rest only on a change (a smaller HMGET is
  -- about 1 us less per record, and most records of a steady state are unchanged)
  local state = redis.call('HMGET', cur, 'segment', 'rid')
  local prev, last = state[1], state[2]

  -- Idempotency: a record not newer than the last one applied (a replay, or a stale record)
  -- changes nothing, so replaying a spool after a partial write counts each migration once.
  if last and not newer(rid, last) then
    return 0, prev, 1
  end
  if prev == seg then  -- only the time changes (the record id is the replay guard's time)
    redis.call('HSET', cur, 'assigned_at', at, 'rid', rid)
    return 0, prev, 0
  end

  local more = redis.call('HMGET', cur, 'name', 'member', 'seq')
  local prev_name, prev_member = more[1], more[2]
  local seq = (tonumber(more[3] or '0') or 0) + 1
  local member = string.rep('0', 13 - #at) .. at .. ':' .. cid
  redis.call('HSET', cur, 'segment', seg, 'name', name, 'version', ver, 'assigned_at', at,
    'since', at, 'member', member, 'seq', seq, 'rid', rid)

  if prev and prev_member then
    redis.call('ZREM', prefix .. prev, prev_member)
  end
  redis.call('ZADD', prefix .. seg, 0, member)

  local from_json = prev and cjson.encode(prev) or 'null'
  local from_name_json = (prev_name and prev_name ~= '') and cjson.encode(prev_name) or 'null'
  redis.call('LPUSH', hist, '{"from":' .. from_json .. ',"from_name":' .. from_name_json ..
    ',"seq":' .. seq .. ',"to":' .. seg_json[a] .. ',"to_name":' .. name_json[a] ..
    ',"version":' .. ver_json[a] .. ',"at":' .. at .. ',"rid":"' .. rid .. '"}')
  redis.call('LTRIM', hist, 0, cap - 1)
  redis.call('PEXPIRE', hist, ttl)

  redis.call('HINCRBY', KEYS[1 + f], (prev or '') .. '>' .. seg, 1)
  flow_touched[f] = true

  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
    'type', 'segment_change', 'customer_id', cid,
    'from', prev or '', 'from_name', prev_name or '', 'to', seg, 'to_name', name,
    'model_version', ver, 'assigned_at', at, 'record_id', rid, 'seq', seq)
  return 1, prev, 0
end

local out, n, k = {}, 0, 1 + nflows
while p <= #ARGV do
  local ok, changed, prev, duplicate = pcall(apply, KEYS[k + 1], KEYS[k + 2], ARGV[p],
    ARGV[p + 1], ARGV[p + 2], tonumber(ARGV[p + 4]), tonumber(ARGV[p + 3]))
  if not ok then  -- this record failed (e.g. WRONGTYPE): say so in its place, go on
    changed, prev, duplicate = -1, type(changed) == 'table' and changed.err or tostring(changed), 0
  end
  out[n + 1], out[n + 2], out[n + 3] = changed, prev, duplicate
  p, k, n = p + 5, k + 2, n + 3
end

for f in pairs(flow_touched) do
  redis.call('PEXPIREAT', KEYS[1 + f], flow_expiry[f])
end
return out
