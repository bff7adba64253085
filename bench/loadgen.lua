-- wrk script for bench/api_bench.py: POST a pool of realistic bodies to one path.
--
--   wrk -c 32 -t 2 -d 15s --latency -s bench/loadgen.lua http://127.0.0.1:8000 -- \
--       /v1/assign bodies.ndjson [API_KEY]
--
-- args: the path to POST to, a file of request bodies (one JSON document a line) and,
-- optionally, an API key sent as "Authorization: Bearer <key>".
-- Requests are formatted once in init(), so wrk spends its (shared) CPU on sending, not on
-- Lua. Each thread starts at a different offset in the pool and walks it in order.
-- done() prints one line "BENCH {json}" with the figures api_bench.py parses.

local counter = 0
local threads = {}

function setup(thread)
   thread:set("id", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   local path, file, key = args[1], args[2], args[3]
   local headers = { ["Content-Type"] = "application/json" }
   if key and #key > 0 then
      headers["Authorization"] = "Bearer " .. key
   end
   prepared = {}
   for line in io.lines(file) do
      if #line > 0 then
         prepared[#prepared + 1] = wrk.format("POST", path, headers, line)
      end
   end
   if #prepared == 0 then
      error("no request bodies in " .. file)
   end
   index = (id * 7919) % #prepared
end

function request()
   index = index % #prepared + 1
   return prepared[index]
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
