-- wrk script: POST /users/ of the guide route, as a browser on the allowed origin sends it
-- (Origin, the X-Tenant header the app-wide dependency checks, gzip accepted).
-- Prints one machine-readable RESULT line at the end.
wrk.method = "POST"
wrk.body = '{"username":"ada","password":"hunter2","email":"ada@example.com"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Origin"] = "https://app.example.com"
wrk.headers["X-Tenant"] = "acme"
wrk.headers["Accept-Encoding"] = "gzip"

done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f reqs=%d non2xx=%d sockerr=%d\n",
    summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout))
end
