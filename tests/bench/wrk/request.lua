-- wrk script for `make bench`: one fixed request per run, and a JSON summary at the end.
--   BENCH_METHOD  request method (GET, PATCH, POST)
--   BENCH_BODY    file with the request body (optional)
--   BENCH_CTYPE   content-type (default application/scim+json when there is a body)
--   BENCH_AGENT   user-agent (default scimguard-bench)
-- The request is built once (wrk.method/body/headers), so wrk's own cost per request is small
-- and the same in every variant. The summary line starts with "BENCH_JSON " for bench.py.
wrk.method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("BENCH_CTYPE") or "application/scim+json"
end
wrk.headers["Authorization"] = "Bearer bench"
-- BENCH_AGENT tags the run (scimguard's audit records carry the user agent; bench.py reads the
-- decision time of the 1-connection runs from them).
wrk.headers["User-Agent"] = os.getenv("BENCH_AGENT") or "scimguard-bench"

function done(summary, latency, requests)
  local e = summary.errors
  local p = {}
  for _, q in ipairs({50, 90, 99, 99.9}) do
    p[#p + 1] = string.format('"%s":%d', tostring(q), latency:percentile(q))
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"p":{%s}}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.max, latency.mean, latency.stdev, table.concat(p, ",")))
end
