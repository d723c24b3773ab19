-- wrk script: POST /items/ of the tour with a valid item (its constraints all checked).
-- Prints one machine-readable RESULT line at the end; 201 counts as success.
wrk.method = "POST"
wrk.body = '{"name":"Foo","price":2.5,"tags":["a","b"],"description":"A foo"}'
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f reqs=%d non2xx=%d sockerr=%d\n",
    summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
