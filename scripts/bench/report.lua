-- wrk script for scripts/bench.sh: counts every response whose status is
-- not 2xx (wrk's own "errors.status" only counts >= 400, and a signed-in
-- route that lost its session answers 303), and prints one line that the
-- shell script parses:
--   BENCH requests=N duration_us=N p50_us=N p99_us=N non2xx=N connect=N read=N write=N timeout=N
--
-- The session cookie comes from the environment (BENCH_COOKIE), not from the
-- command line, so it does not show up in `ps`.

local cookie = os.getenv("BENCH_COOKIE")
if cookie ~= nil and cookie ~= "" then
  wrk.headers["Cookie"] = cookie
end

-- BENCH_BODY_BYTES=N makes every request a POST with an N-byte body;
-- BENCH_CLOSE=1 asks for a new connection per request (Connection: close).
local body_bytes = tonumber(os.getenv("BENCH_BODY_BYTES") or "")
if body_bytes ~= nil and body_bytes > 0 then
  wrk.method = "POST"
  wrk.body = string.rep("x", body_bytes)
  wrk.headers["Content-Type"] = "application/octet-stream"
end
if os.getenv("BENCH_CLOSE") == "1" then
  wrk.headers["Connection"] = "close"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do
    bad = bad + t:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50.0), latency:percentile(99.0),
    bad, e.connect, e.read, e.write, e.timeout))
end
