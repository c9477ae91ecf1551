-- wrk script of every HTTP benchmark, set up from the environment:
-- WRK_METHOD (GET), WRK_BODY (JSON), WRK_API_KEY, WRK_DELAY_MS (mean pause per connection between
-- requests, drawn uniformly from 0..2x so the connections do not fall into step and arrive in bursts).
-- Prints one JSON summary line at the end.
wrk.method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY") or ""
if body ~= "" then
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
local key = os.getenv("WRK_API_KEY") or ""
if key ~= "" then
  wrk.headers["X-API-Key"] = key
end
local pause_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause_ms > 0 then
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16))
  delay = function() return math.random(0, 2 * pause_ms) end
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'SUMMARY {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"socket_errors":%d,"non_2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, errors, summary.errors.status))
end
