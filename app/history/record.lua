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
--   an expected profile '@' and a record id stands for '=' across calls (that earlier
--   record went in an earlier call: a batch naming a customer more often than a call
--   holds): applied only if the customer's last applied record is that one;
--   an expected profile '*' is any profile: the record applies unless the customer has
--   none (a forget since the read), whatever else changed it
--
-- Returns 3 values per record: changed (0/1), previous segment or nil, duplicate (0/1, or
-- 2: stale, a checked record whose profile changed, not applied); a record that failed (a
-- key of the wrong type) gives -1 and the error's text instead.
--
-- A first load runs every record through the path below once, so that path is written for
-- Redis's time: globals read into locals, no table, string or number conversion made per
-- record that an earlier record of the call already made, and the customer's HSET called
-- with its arguments rather than through a table.

local KEYS, ARGV = KEYS, ARGV
local call, pcall, tonumber, tostring, unpack = redis.call, pcall, tonumber, tostring, unpack
local sub, find, gmatch, match = string.sub, string.find, string.gmatch, string.match
local floor = math.floor

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
  local i = call('HGET', registry, kind .. '>' .. value)
  if i then return i end
  i = tostring(call('HINCRBY', registry, kind .. '#', 1))
  call('HSET', registry, kind .. '>' .. value, i, kind .. '<' .. i, value)
  return i
end

local nassign = tonumber(ARGV[p])
p = p + 1
local segs, vers, vidx, version_of = {}, {}, {}, {}
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
  version_of[a] = v
  return v
end
local nschemas = tonumber(ARGV[p])
p = p + 1
-- per schema: its index in the registry, and its 'p' field per chunk count ('<index>:<count>')
local sidx, profile_head = {}, {}
for i = 1, nschemas do
  sidx[i], profile_head[i] = index_of('f', ARGV[p]), {}
  p = p + 2
end
local any_forgotten = call('EXISTS', forgotten) == 1

-- A record's small indexes (flow, assignment, schema) as numbers, each text parsed once per
-- call (tonumber is strtod; the records of a call repeat a few texts).
local numbers = {}
local function number(text)
  local x = tonumber(text)
  numbers[text] = x
  return x
end

-- Is id a newer than id b? Both are 32 lowercase hex digits; compared 12 digits (48 bits, exact
-- in a Lua number) at a time, as numbers: Lua's '<' on strings follows the server's locale, and
-- a loop over bytes cost more than the rest of an unchanged record's work.
local function newer(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a, 12 do
    local x, y = sub(a, i, i + 11), sub(b, i, i + 11)
    if x ~= y then return tonumber(x, 16) > tonumber(y, 16) end
  end
  return false
end

-- Counters the call's records share are kept here and written once at the end (the script
-- is atomic, so nobody sees them in between): a segment head's next join number ('n') and
-- member count ('c'), and each flow bucket's from>to counts. A call cost two to three
-- fewer commands per migration this way.
local last_n, count, flows = {}, {}, {}
-- per segment, the text of its last join number's tens: {tens, text}
local tens_of, DIGIT = {}, {[0] = '0', '1', '2', '3', '4', '5', '6', '7', '8', '9'}

-- Joins are written once per membership block at the end of the call (one HSET of many
-- members instead of one per migration: a first load's records mostly join a few blocks). A
-- member who leaves a block in the same call is taken out of what is still to be written.
local joins, join_blocks = {}, {}
-- per segment, the block its last join went to: {members to write, first join number past it}
local open_block = {}
local function leave(block, n)
  local members = joins[block]
  if members and members[n] then
    members[n] = nil
  else
    call('HDEL', block, n)
  end
end

-- A time (epoch ms, decimal text) in base 36: 8 characters instead of 13 in history entries.
local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function base36(text)
  local x, out = tonumber(text), ''
  repeat
    local d = x % 36
    out = sub(DIGITS, d + 1, d + 1) .. out
    x = (x - d) / 36
  until x == 0
  return out
end

-- Texts made once per call and only when first needed (a call of one record must not pay
-- for more than a table): Lua formats a number with sprintf each time it is used as a
-- string, and makes (hashes, looks up) a string at each concatenation.
local chunk_field, seq_text, seq_field = {}, {}, {}
local function chunk_name(i)
  local name = chunk_field[i]
  if not name then
    name = tostring(i - 1)
    chunk_field[i] = name
  end
  return name
end
-- history entries by time, version index and previous segment; flow fields by from and to
local entries_at, entries, flow_field = nil, nil, {}

-- A profile's values (joined by \30) as their chunks: how many, the first two, and all of
-- them in a table when there are more than two (or an empty one between separators).
local function chunks_of(text)
  local e = find(text, '\30', 1, true)
  if not e then
    if text == '' then return 0, nil, nil, {} end
    return 1, text
  end
  if e > 1 and e < #text and not find(text, '\30', e + 1, true) then
    return 2, sub(text, 1, e - 1), sub(text, e + 1)
  end
  local chunks = {}
  for chunk in gmatch(text, '[^\30]+') do chunks[#chunks + 1] = chunk end
  return #chunks, chunks[1], chunks[2], chunks
end

-- The 'p' field of schema s's profile in j chunks.
local function profile_field(s, j)
  local heads = profile_head[s]
  local head = heads[j]
  if not head then
    head = sidx[s] .. ':' .. j
    heads[j] = head
  end
  return head
end

-- The chunks of an older, longer profile than the j chunks being written are deleted.
local function drop_chunks(cur, stored, j)
  local before = stored and tonumber(match(stored, ':(%d+)$')) or 0
  for old = j, before - 1 do call('HDEL', cur, old) end
end

-- Set the customer's fields (a list ending at index k) followed by a profile's: 'p' is
-- '<schema index>:<chunks>', 'u' the time, and chunk i is field i (the path for more than
-- two chunks; one or two go as arguments, without a table).
local function set_with_chunks(cur, fields, k, s, at, j, chunks)
  fields[k + 1], fields[k + 2], fields[k + 3], fields[k + 4] = 'p', profile_field(s, j), 'u', at
  k = k + 4
  for i = 1, j do
    fields[k + 1], fields[k + 2] = chunk_name(i), chunks[i]
    k = k + 2
  end
  call('HSET', cur, unpack(fields, 1, k))
end

-- Does the customer's hash hold exactly the profile fields 'expected' ('p' and the chunks,
-- joined by \30), 'p' being 'stored'? A by-id assignment made from a profile cached by the
-- service is recorded only then: anything that stored another profile (a record with
-- features, a file run) or removed it (a forget) changed these fields. A by-id record
-- stores no profile, so concurrent ones for one customer never fail each other's check.
local function profile_is(cur, stored, expected)
  if expected == '*' then return stored ~= false end  -- any profile: only a forget fails it
  local fields = {}
  for field in gmatch(expected, '[^\30]+') do fields[#fields + 1] = field end
  if stored ~= fields[1] then return false end
  if #fields == 1 then return true end
  local names = {}
  for i = 2, #fields do names[i - 1] = chunk_name(i - 1) end
  local chunks = call('HMGET', cur, unpack(names))
  for i = 2, #fields do
    if chunks[i - 1] ~= fields[i] then return false end
  end
  return true
end

-- One record, as if alone: returns changed (0/1), previous segment (false: none), duplicate
-- (1; 2: stale, see profile_is). absent: the customer is known to have no hash (the call's
-- probe, below), so there is nothing to read.
-- settled[key]: did the last checked record of that customer in this call apply (or was it
-- a duplicate)? Made on the call's first checked record: unchecked calls pay nothing.
local settled
local function apply(cur, rid, cid, at, f, a, s, vp, ep, absent)
  local seg = segs[a]
  if ep and ARGV[ep] == '=' and not (settled and settled[cur]) then return 0, false, 2 end
  -- what an unchanged record needs first; the rest only on a change
  local prev, last, stored = false, false, false
  if not absent then
    local state = call('HMGET', cur, 's', 'r', 'p')
    prev, last, stored = state[1], state[2], state[3]
  end
  if ep and ARGV[ep] ~= '=' then
    local expected = ARGV[ep]
    if sub(expected, 1, 1) == '@' then  -- '=' across calls: that record applied last
      if last ~= sub(expected, 2) then return 0, false, 2 end
    elseif not profile_is(cur, stored, expected) then
      return 0, false, 2
    end
  end

  -- Idempotency: a record not newer than the last one applied (a replay, or a stale record)
  -- changes nothing, so replaying a spool after a partial write counts each migration once.
  -- A forgotten customer's records made up to the forget (by their id's time) are ignored.
  if last then
    if not newer(rid, last) then return 0, prev, 1 end
  elseif any_forgotten then
    local when = call('ZSCORE', forgotten, redis.sha1hex(cid))
    if when and tonumber(sub(rid, 1, 12), 16) <= tonumber(when) then
      return 0, false, 1
    end
  end
  if prev == seg then  -- only the time changes (the record id is the replay guard's time)
    if s == 0 then
      call('HSET', cur, 'a', at, 'r', rid)
      return 0, prev, 0
    end
    local j, c1, c2, chunks = chunks_of(ARGV[vp])
    if stored then drop_chunks(cur, stored, j) end
    if chunks then
      set_with_chunks(cur, {'a', at, 'r', rid}, 4, s, at, j, chunks)
    elseif j == 1 then
      call('HSET', cur, 'a', at, 'r', rid, 'p', profile_field(s, 1), 'u', at, '0', c1)
    else
      call('HSET', cur, 'a', at, 'r', rid, 'p', profile_field(s, 2), 'u', at, '0', c1, '1', c2)
    end
    return 0, prev, 0
  end

  -- 'q' and 'n' are only ever written with 's' and 'r': a hash with neither (a customer's
  -- first record, the whole of a first load) has none to read
  local seq = 1
  if prev or last then
    local more = call('HMGET', cur, 'q', 'n')
    seq = (tonumber(more[1] or '0') or 0) + 1
    if prev and more[2] then  -- leave the previous segment's membership
      leave(prefix .. prev .. '>' .. floor(tonumber(more[2]) / 128), more[2])
      count[prev] = (count[prev] or 0) - 1
    end
  end
  local n = last_n[seg]
  if not n then n = tonumber(call('HGET', prefix .. seg, 'n') or '0') end
  n = n + 1
  last_n[seg] = n
  count[seg] = (count[seg] or 0) + 1
  -- n as text, from its tens' text (made once per ten joins) and its last digit: tostring
  -- formats with sprintf('%.14g'), a few per cent of a first load's time
  local digit = n % 10
  local tens = (n - digit) / 10
  local ten = tens_of[seg]
  if not ten or ten[1] ~= tens then
    ten = {tens, tens == 0 and '' or tostring(tens)}
    tens_of[seg] = ten
  end
  local n_text = ten[2] .. DIGIT[digit]
  -- a segment's join numbers only grow within a call, so its open block is full at a bound
  local block = open_block[seg]
  if not block or n >= block[2] then
    local b = floor(n / 128)
    local key = prefix .. seg .. '>' .. b
    local members = joins[key]
    if not members then
      members = {}
      joins[key] = members
      join_blocks[#join_blocks + 1] = key
    end
    block = {members, (b + 1) * 128}
    open_block[seg] = block
  end
  block[1][n_text] = at .. ':' .. cid

  local v = version_of[a] or version_index(a)
  local q, h = seq_text[seq], seq_field[seq]
  if not q then
    q = tostring(seq)
    h = 'h' .. q
    seq_text[seq], seq_field[seq] = q, h
  end
  local from = prev or ''
  if at ~= entries_at then entries_at, entries = at, {} end
  local by_version = entries[v]
  if not by_version then
    by_version = {}
    entries[v] = by_version
  end
  local entry = by_version[from]
  if not entry then
    entry = base36(at) .. '|' .. v .. '|' .. from
    by_version[from] = entry
  end
  if s == 0 then
    call('HSET', cur, 's', seg, 'v', v, 'a', at, 'q', q, 'r', rid, 'n', n_text, h, entry)
  else
    local j, c1, c2, chunks = chunks_of(ARGV[vp])
    if stored then drop_chunks(cur, stored, j) end
    if chunks then
      set_with_chunks(cur, {'s', seg, 'v', v, 'a', at, 'q', q, 'r', rid, 'n', n_text, h, entry},
        14, s, at, j, chunks)
    elseif j == 1 then
      call('HSET', cur, 's', seg, 'v', v, 'a', at, 'q', q, 'r', rid, 'n', n_text, h, entry,
        'p', profile_field(s, 1), 'u', at, '0', c1)
    else
      call('HSET', cur, 's', seg, 'v', v, 'a', at, 'q', q, 'r', rid, 'n', n_text, h, entry,
        'p', profile_field(s, 2), 'u', at, '0', c1, '1', c2)
    end
  end
  if seq > cap then call('HDEL', cur, 'h' .. (seq - cap)) end

  local to = flow_field[from]
  if not to then
    to = {}
    flow_field[from] = to
  end
  local pair = to[seg]
  if not pair then
    pair = from .. '>' .. seg
    to[seg] = pair
  end
  local moved = flows[f]
  if not moved then
    moved = {}
    flows[f] = moved
  end
  moved[pair] = (moved[pair] or 0) + 1

  call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'customer_id', cid,
    'from', from, 'to', seg, 'model_version', vers[a], 'assigned_at', at,
    'record_id', rid, 'seq', q)
  return 1, prev, 0
end

-- The probe: once a record of the call turns out to be a new customer, one EXISTS asks
-- whether any of the call's later customers has a hash. None (a first load) spares each of
-- them the HMGET, which could only find nothing; a customer seen again later in the call
-- is read as usual (its first record wrote the hash).
local PROBE_KEYS = 1000
local nkeys, nargs = #KEYS, #ARGV
local probed, absent_from, absent_to, seen = false, 0, -1, nil

local out, n, k = {}, 0, 3 + nflows
while p <= nargs do
  local st = ARGV[p + 5]
  local s = numbers[st] or number(st)
  -- the schema of the profile stored (0: none), and where the expected profile is (checked)
  local schema, ep, used = s, nil, (s ~= 0 and 1 or 0)
  if s == -1 then
    schema, ep = 0, p + 6
  elseif s < -1 then
    schema, ep, used = -s - 1, p + 7, 2
  end
  k = k + 1
  local cur = KEYS[k]
  local absent = false
  if k >= absent_from and k <= absent_to then
    absent = not seen[cur]
    seen[cur] = true
  end
  local ft, ai = ARGV[p + 3], ARGV[p + 4]
  local ok, changed, prev, duplicate = pcall(apply, cur, ARGV[p], ARGV[p + 1], ARGV[p + 2],
    numbers[ft] or number(ft), numbers[ai] or number(ai), schema, p + 6, ep, absent)
  if not ok then  -- this record failed (e.g. WRONGTYPE): say so in its place, go on
    changed, prev, duplicate = -1, type(changed) == 'table' and changed.err or tostring(changed), 0
  end
  if ep then
    settled = settled or {}
    settled[cur] = ok and duplicate ~= 2
  end
  if not probed and changed == 1 and not prev and k < nkeys then
    probed = true
    local last_key = math.min(nkeys, k + PROBE_KEYS)
    if call('EXISTS', unpack(KEYS, k + 1, last_key)) == 0 then
      absent_from, absent_to, seen = k + 1, last_key, {}
    end
  end
  out[n + 1], out[n + 2], out[n + 3] = changed, prev, duplicate
  p = p + 6 + used
  n = n + 3
end

for _, block in ipairs(join_blocks) do
  local fields, k = {}, 0
  for n, value in pairs(joins[block]) do
    fields[k + 1], fields[k + 2] = n, value
    k = k + 2
  end
  if k > 0 then call('HSET', block, unpack(fields)) end
end
for seg, n in pairs(last_n) do call('HSET', prefix .. seg, 'n', n) end
for seg, c in pairs(count) do
  if c ~= 0 then call('HINCRBY', prefix .. seg, 'c', c) end
end
for f, moved in pairs(flows) do
  for pair, c in pairs(moved) do call('HINCRBY', KEYS[3 + f], pair, c) end
  call('PEXPIREAT', KEYS[3 + f], flow_expiry[f])
end
return out
