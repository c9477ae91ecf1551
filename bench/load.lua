-- wrk scenario of the load benchmark (bench/load.py), the same as bench/locustfile.py: shops create an
-- order, read one of theirs back or list orders (6:3:1) without pause; analysts, once a second, ask for
-- today's report (1), read a task's state (4) or a page of reports (5). Run with one connection per thread
-- (-t N -c N), so each thread's request() and response() alternate and a request's latency is the time
-- between them. The first LOAD_ANALYSTS threads are analysts. Set up from the environment: LOAD_API_KEY,
-- LOAD_ANALYSTS. Prints one line, LOAD {json}: per endpoint, requests, errors and sorted-sample
-- percentiles in ms, and socket errors (connect, read, write, timeout), which count among all's errors;
-- each unexpected answer is also written to stderr with its status and the start of its body.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } load_timespec;
int clock_gettime(int clock_id, load_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("load_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local ENDPOINTS = {
  "POST /orders", "GET /orders/{id}", "GET /orders", "POST /report/generate", "GET /report/tasks/{id}", "GET /report/all",
}
local EXPECTED = { ["POST /orders"] = 201, ["POST /report/generate"] = 202 }
local ORDER = '{"customer_email":"load@example.com","currency":"EUR","items":'
  .. '[{"sku":"SKU-1","quantity":2,"unit_price":"9.99"},{"sku":"SKU-2","quantity":1,"unit_price":"5.00"}]}'
local KEEP = 10000

local key = os.getenv("LOAD_API_KEY") or ""
local with_key = { ["X-API-Key"] = key }
local with_key_json = { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }

-- per thread (each thread has a Lua state of its own), by the endpoint's position in ENDPOINTS:
-- latencies_<n> and errors[n]. Flat tables, because wrk's thread:get() copies only those intact.
local POSITION = {}
for position, name in ipairs(ENDPOINTS) do
  POSITION[name] = position
end
errors = {}
local analyst = false
local created, tasks = {}, {}
local current, started = nil, nil

local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
  table.insert(threads, thread)
end

function init(args)
  analyst = thread_id <= tonumber(os.getenv("LOAD_ANALYSTS") or "0")
  math.randomseed(os.time() * 1000 + thread_id)
  for position in ipairs(ENDPOINTS) do
    _G["latencies_" .. position] = {}
    errors[position] = 0
  end
end

function delay()
  return analyst and 1000 or 0
end

local function shop_request()
  local draw = math.random(10)
  if draw <= 6 or #created == 0 then
    return "POST /orders", wrk.format("POST", "/orders", with_key_json, ORDER)
  elseif draw <= 9 then
    return "GET /orders/{id}", wrk.format("GET", "/orders/" .. created[math.random(#created)], with_key)
  end
  return "GET /orders", wrk.format("GET", "/orders?page=1&count=20", with_key)
end

local function analyst_request()
  local draw = math.random(10)
  if draw == 1 then
    return "POST /report/generate", wrk.format("POST", "/report/generate?report_date=" .. os.date("!%Y-%m-%d"), with_key)
  elseif draw <= 5 and #tasks > 0 then
    return "GET /report/tasks/{id}", wrk.format("GET", "/report/tasks/" .. tasks[math.random(#tasks)], with_key)
  end
  return "GET /report/all", wrk.format("GET", "/report/all?page=1&count=10", with_key)
end

-- wrk also calls request() once on the first thread before the run, to check the request parses: a
-- request without an answer is therefore not counted here; wrk counts lost ones as socket errors.
function request()
  local name, text
  if analyst then
    name, text = analyst_request()
  else
    name, text = shop_request()
  end
  current, started = name, now_ms()
  return text
end

local function remember(list, value)
  if value then
    list[#list + 1] = value
    if #list > KEEP then
      table.remove(list, 1)
    end
  end
end

function response(status, headers, body)
  local name = current
  if name == nil then
    return
  end
  local position = POSITION[name]
  local samples = _G["latencies_" .. position]
  samples[#samples + 1] = now_ms() - started
  current = nil
  if status ~= (EXPECTED[name] or 200) then
    errors[position] = errors[position] + 1
    io.stderr:write(string.format("%s answered %d: %s\n", name, status, body:sub(1, 300)))
  elseif name == "POST /orders" then
    remember(created, body:match('"id"%s*:%s*"([%x%-]+)"'))
  elseif name == "POST /report/generate" then
    remember(tasks, body:match('"task_id"%s*:%s*"([%x%-]+)"'))
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then
    return 0
  end
  return sorted[math.max(1, math.ceil(p / 100 * #sorted))]
end

local function figures(samples, failed)
  table.sort(samples)
  return string.format('{"requests":%d,"errors":%d,"p50":%.2f,"p95":%.2f,"p99":%.2f}',
    #samples, failed, percentile(samples, 50), percentile(samples, 95), percentile(samples, 99))
end

function done(summary, latency, requests)
  local merged, failed = {}, {}
  local all, all_failed = {}, 0
  for _, name in ipairs(ENDPOINTS) do
    merged[name], failed[name] = {}, 0
  end
  for _, thread in ipairs(threads) do
    local thread_errors = thread:get("errors")
    for position, name in ipairs(ENDPOINTS) do
      for _, value in ipairs(thread:get("latencies_" .. position)) do
        table.insert(merged[name], value)
        table.insert(all, value)
      end
      failed[name] = failed[name] + thread_errors[position]
      all_failed = all_failed + thread_errors[position]
    end
  end
  local parts = {}
  for _, name in ipairs(ENDPOINTS) do
    table.insert(parts, string.format('"%s":%s', name, figures(merged[name], failed[name])))
  end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  table.insert(parts, string.format('"all":%s', figures(all, all_failed + socket_errors)))
  io.write(string.format('LOAD {"duration_us":%d,"socket_errors":%d,"endpoints":{%s}}\n',
    summary.duration, socket_errors, table.concat(parts, ",")))
end
