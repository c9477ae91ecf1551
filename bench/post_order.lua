-- wrk script: POST /orders with a two-item order; prints a JSON summary line at the end.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"customer_email":"bench@example.com","currency":"EUR","items":[{"sku":"SKU-1","quantity":2,"unit_price":"9.99"},{"sku":"SKU-2","quantity":1,"unit_price":"5.00"}]}'

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'SUMMARY {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"socket_errors":%d,"non_2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, errors, summary.errors.status))
end
