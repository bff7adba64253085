-- Record the segment assignments of many customers of one shard, atomically and in order
-- (see docs/redis-keys.md). One call applies each record exactly as if it were alone: a
-- customer's later record sees its earlier one.
--
-- KEYS[1] event stream, KEYS[2] registry hash, KEYS[3] forgotten set, KEYS[4 .. F+3] flow
--   hashes (one per time bucket), then one customer hash per record (every key shares one
--   hash tag; so do the membership keys, named from ARGV[1])
-- ARGV[1] membership key prefix (the tag's 'm:'; a segment id is appended)
-- ARGV[2] history cap   ARGV[3] stream MAXLEN (approximate)
-- ARGV[4] F, then F flow expiry times (epoch ms), in the order of the flow keys
-- then T, then T assignments (segment id, model version)
-- then S, then S profile schemas (feature names joined by \31, their count)
-- then per record: record id (32 lowercase hex, time-ordered), customer id, assigned at
--   (epoch ms), flow index (1..F), assignment index (1..T), schema index (0: no profile;
--   1..S, followed by the profile's values: their JSON texts joined by \31; -1: no profile,
--   and the record is checked: followed by the stored profile it was assigned from, 'p'
--   and the chunks joined by \30, and applied only if the customer's hash still holds
--   exactly those; -(S+1) .. -2: both, a checked record that stores a profile (features
--   merged over the stored ones): schema -s - 1, its values, then the expected profile;
--   an expected profile '=' stands for "what this customer's previous checked record in
--   this call left": such a record is applied only if that one was applied (or was a
--   duplicate), and is stale if it was stale, failed, or is not in this call (a batch's
--   later item of a customer, merged over an earlier item completed from the profile);
--   an expected profile '*' is any profile: the record applies unless the customer has
--   none (a forget since the read), whatever else changed it
--
-- Returns 3 values per record: changed (0/1), previous segment or nil, duplicate (0/1, or
-- 2: stale, a checked record whose profile changed, not applied); a record that failed (a
-- key of the wrong type) gives -1 and the error's text instead.

local stream, registry, forgotten = KEYS[1], KEYS[2], KEYS[3]
local prefix, cap, maxlen = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local nflows = tonumber(ARGV[4])
local p = 5
local flow_expiry = {}
for i = 1, nflows do
  flow_expiry[i] = ARGV[p]
  p = p + 1
end

-- The registry's small index of a version ('v') or a schema ('f'), given one on first use.
local function index_of(kind, value)
  local i = redis.call('HGET', registry, kind .. '>' .. value)
  if i then return i end
  i = tostring(redis.call('HINCRBY', registry, kind .. '#', 1))
  redis.call('HSET', registry, kind .. '>' .. value, i, kind .. '<' .. i, value)
  return i
end

local nassign = tonumber(ARGV[p])
p = p + 1
local segs, vers, vidx = {}, {}, {}
for i = 1, nassign do
  segs[i], vers[i] = ARGV[p], ARGV[p + 1]
  p = p + 2
end
-- a version is registered when it first moves a customer (unchanged records change nothing)
local function version_index(a)
  local v = vidx[vers[a]]
  if not v then
    v = index_of('v', vers[a])
    vidx[vers[a]] = v
  end
  return v
end
local nschemas = tonumber(ARGV[p])
p = p + 1
local sidx, scount = {}, {}
for i = 1, nschemas do
  sidx[i], scount[i] = index_of('f', ARGV[p]), tonumber(ARGV[p + 1])
  p = p + 2
end
local any_forgotten = redis.call('EXISTS', forgotten) == 1

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

-- Counters the call's records share are kept here and written once at the end (the script
-- is atomic, so nobody sees them in between): a segment head's next join number ('n') and
-- member count ('c'), and each flow bucket's from>to counts. A call cost two to three
-- fewer commands per migration this way.
local last_n, count, flows = {}, {}, {}
local function join_number(seg)
  local n = last_n[seg]
  if not n then n = tonumber(redis.call('HGET', prefix .. seg, 'n') or '0') end
  n = n + 1
  last_n[seg] = n
  return n
end

-- Joins are written once per membership block at the end of the call (one HSET of many
-- members instead of one per migration: a first load's records mostly join a few blocks). A
-- member who leaves a block in the same call is taken out of what is still to be written.
local joins, join_blocks = {}, {}
-- the block key of join number n in seg's membership (the last one per segment is kept)
local last_block = {}
local function block_of(seg, n)
  local b = math.floor(n / 128)
  local known = last_block[seg]
  if known and known[1] == b then return known[2] end
  local key = prefix .. seg .. '>' .. b
  last_block[seg] = {b, key}
  return key
end
local function join(block, n, value)
  local members = joins[block]
  if not members then
    members = {}
    joins[block] = members
    join_blocks[#join_blocks + 1] = block
  end
  members[n] = value
end
local function leave(block, n)
  local members = joins[block]
  if members and members[n] then
    members[n] = nil
  else
    redis.call('HDEL', block, n)
  end
end

-- A time (epoch ms, decimal text) in base 36: 8 characters instead of 13 in history entries.
-- The last one is kept: the records of a batch or a file run share one time.
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local last_time, last_base36
local function base36(text)
  if text == last_time then return last_base36 end
  local x, out = tonumber(text), ''
  repeat
    local d = x % 36
    out = string.sub(DIGITS, d + 1, d + 1) .. out
    x = (x - d) / 36
  until x == 0
  last_time, last_base36 = text, out
  return out
end

-- Numbers as text, made once per call and only when first needed (a call of one record
-- must not pay for a table): Lua formats a number with sprintf each time it is used as a
-- string (a field name, a concatenation), a tenth of a first load's script time.
local chunk_field, colon_count = {}, {}
local function chunk_name(i)
  local name = chunk_field[i]
  if not name then
    name = tostring(i - 1)
    chunk_field[i] = name
  end
  return name
end
local function colon(j)
  local text = colon_count[j]
  if not text then
    text = ':' .. j
    colon_count[j] = text
  end
  return text
end

-- The HSET arguments of a profile (schema s; ARGV[vp] holds its chunks, joined by \30):
-- 'p' is '<schema index>:<chunks>', 'u' the time, and chunk i is field i. The chunks of an
-- older, longer profile are deleted.
local function profile_fields(cur, fields, stored, s, at, vp)
  local chunks = {}
  for chunk in string.gmatch(ARGV[vp], '[^\30]+') do chunks[#chunks + 1] = chunk end
  local k, j = #fields, #chunks
  fields[k + 1], fields[k + 2], fields[k + 3], fields[k + 4] = 'p', sidx[s] .. colon(j), 'u', at
  k = k + 4
  for i = 1, j do
    fields[k + 1], fields[k + 2] = chunk_name(i), chunks[i]
    k = k + 2
  end
  local before = stored and tonumber(string.match(stored, ':(%d+)$')) or 0
  for old = j, before - 1 do redis.call('HDEL', cur, old) end
end

-- Does the customer's hash hold exactly the profile fields 'expected' ('p' and the chunks,
-- joined by \30), 'p' being 'stored'? A by-id assignment made from a profile cached by the
-- service is recorded only then: anything that stored another profile (a record with
-- features, a file run) or removed it (a forget) changed these fields. A by-id record
-- stores no profile, so concurrent ones for one customer never fail each other's check.
local function profile_is(cur, stored, expected)
  if expected == '*' then return stored ~= false end  -- any profile: only a forget fails it
  local fields = {}
  for field in string.gmatch(expected, '[^\30]+') do fields[#fields + 1] = field end
  if stored ~= fields[1] then return false end
  if #fields == 1 then return true end
  local names = {}
  for i = 2, #fields do names[i - 1] = chunk_name(i - 1) end
  local chunks = redis.call('HMGET', cur, unpack(names))
  for i = 2, #fields do
    if chunks[i - 1] ~= fields[i] then return false end
  end
  return true
end

-- One record, as if alone: returns changed (0/1), previous segment (false: none), duplicate
-- (1; 2: stale, see profile_is).
-- settled[key]: did the last checked record of that customer in this call apply (or was it
-- a duplicate)? Made on the call's first checked record: unchecked calls pay nothing.
local settled
local function apply(cur, rid, cid, at, f, a, s, vp, ep)
  local seg = segs[a]
  if ep and ARGV[ep] == '=' and not (settled and settled[cur]) then return 0, false, 2 end
  -- what an unchanged record needs first; the rest only on a change
  local state = redis.call('HMGET', cur, 's', 'r', 'p')
  local prev, last = state[1], state[2]
  if ep and ARGV[ep] ~= '=' and not profile_is(cur, state[3], ARGV[ep]) then
    return 0, false, 2
  end

  -- Idempotency: a record not newer than the last one applied (a replay, or a stale record)
  -- changes nothing, so replaying a spool after a partial write counts each migration once.
  -- A forgotten customer's records made up to the forget (by their id's time) are ignored.
  if last then
    if not newer(rid, last) then return 0, prev, 1 end
  elseif any_forgotten then
    local when = redis.call('ZSCORE', forgotten, redis.sha1hex(cid))
    if when and tonumber(string.sub(rid, 1, 12), 16) <= tonumber(when) then
      return 0, false, 1
    end
  end
  if prev == seg then  -- only the time changes (the record id is the replay guard's time)
    local fields = {'a', at, 'r', rid}
    if s > 0 then profile_fields(cur, fields, state[3], s, at, vp) end
    redis.call('HSET', cur, unpack(fields))
    return 0, prev, 0
  end

  -- 'q' and 'n' are only ever written with 's' and 'r': a hash with neither (a customer's
  -- first record, the whole of a first load) has none to read
  local more = (prev or last) and redis.call('HMGET', cur, 'q', 'n') or {}
  local seq = (tonumber(more[1] or '0') or 0) + 1
  if prev and more[2] then  -- leave the previous segment's membership
    leave(prefix .. prev .. '>' .. math.floor(tonumber(more[2]) / 128), more[2])
    count[prev] = (count[prev] or 0) - 1
  end
  local n = join_number(seg)
  count[seg] = (count[seg] or 0) + 1
  local n_text = tostring(n)
  join(block_of(seg, n), n_text, at .. ':' .. cid)

  local v = version_index(a)
  local seq_text = tostring(seq)
  local fields = {'s', seg, 'v', v, 'a', at, 'q', seq_text, 'r', rid, 'n', n_text,
    'h' .. seq_text, base36(at) .. '|' .. v .. '|' .. (prev or '')}
  if s > 0 then profile_fields(cur, fields, state[3], s, at, vp) end
  redis.call('HSET', cur, unpack(fields))
  if seq > cap then redis.call('HDEL', cur, 'h' .. (seq - cap)) end

  local pair = (prev or '') .. '>' .. seg
  local moved = flows[f] or {}
  flows[f], moved[pair] = moved, (moved[pair] or 0) + 1

  redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'customer_id', cid,
    'from', prev or '', 'to', seg, 'model_version', vers[a], 'assigned_at', at,
    'record_id', rid, 'seq', seq_text)
  return 1, prev, 0
end

local out, n, k = {}, 0, 3 + nflows
while p <= #ARGV do
  local s = tonumber(ARGV[p + 5])
  -- the schema of the profile stored (0: none), and where the expected profile is (checked)
  local schema, ep, used = s, nil, (s ~= 0 and 1 or 0)
  if s == -1 then
    schema, ep = 0, p + 6
  elseif s < -1 then
    schema, ep, used = -s - 1, p + 7, 2
  end
  local ok, changed, prev, duplicate = pcall(apply, KEYS[k + 1], ARGV[p], ARGV[p + 1],
    ARGV[p + 2], tonumber(ARGV[p + 3]), tonumber(ARGV[p + 4]), schema, p + 6, ep)
  if not ok then  -- this record failed (e.g. WRONGTYPE): say so in its place, go on
    changed, prev, duplicate = -1, type(changed) == 'table' and changed.err or tostring(changed), 0
  end
  if ep then
    settled = settled or {}
    settled[KEYS[k + 1]] = ok and duplicate ~= 2
  end
  out[n + 1], out[n + 2], out[n + 3] = changed, prev, duplicate
  p = p + 6 + used
  k, n = k + 1, n + 3
end

for _, block in ipairs(join_blocks) do
  local fields, k = {}, 0
  for n, value in pairs(joins[block]) do
    fields[k + 1], fields[k + 2] = n, value
    k = k + 2
  end
  if k > 0 then redis.call('HSET', block, unpack(fields)) end
end
for seg, n in pairs(last_n) do redis.call('HSET', prefix .. seg, 'n', n) end
for seg, c in pairs(count) do
  if c ~= 0 then redis.call('HINCRBY', prefix .. seg, 'c', c) end
end
for f, moved in pairs(flows) do
  for pair, c in pairs(moved) do redis.call('HINCRBY', KEYS[3 + f], pair, c) end
  redis.call('PEXPIREAT', KEYS[3 + f], flow_expiry[f])
end
return out
