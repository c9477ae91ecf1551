-- The load scenario through the gateway, for wrk with one connection per thread (wrk -tN -cN):
-- each thread is one user. Shops create orders, read one of theirs back and list orders, without
-- pause (weights 6:3:1); the last SCENARIO_ANALYSTS of the SCENARIO_USERS threads, once a second
-- (SCENARIO_ANALYST_PAUSE_MS), read report pages and task states and now and then (one call in
-- ten) ask for today's report. Every request carries SCENARIO_API_KEY. wrk keeps one latency
-- table for the whole run, so each thread also times its own requests per endpoint (LuaJIT's ffi,
-- CLOCK_MONOTONIC); done() merges them and prints one JSON line: per endpoint and for all,
-- requests, failures (another status than the endpoint's success; for all, socket errors too)
-- and p50/p95/p99 in ms.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } scenario_timespec;
  int clock_gettime(int clock, scenario_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("scenario_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local ENDPOINTS = { "POST /orders", "GET /orders/{id}", "GET /orders", "POST /report/generate", "GET /report/tasks/{id}",
  "GET /report/all" }
local INDEX = {}
for i, name in ipairs(ENDPOINTS) do
  INDEX[name] = i
end
local EXPECTED = { ["POST /orders"] = 201, ["POST /report/generate"] = 202 } -- the rest: 200
local ORDER = '{"customer_email":"load@example.com","currency":"EUR","items":'
  .. '[{"sku":"SKU-1","quantity":2,"unit_price":"9.99"},{"sku":"SKU-2","quantity":1,"unit_price":"5.00"}]}'
local KEPT_IDS = 10000

-- the main state: hand each thread its role, keep the threads to collect from in done()
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  local analysts = tonumber(os.getenv("SCENARIO_ANALYSTS") or "2")
  local users = tonumber(os.getenv("SCENARIO_USERS") or "") or error("SCENARIO_USERS: set it to wrk's -t")
  thread:set("analyst", #threads > users - analysts)
  thread:set("seed", #threads)
end

-- each thread's state
local key = os.getenv("SCENARIO_API_KEY") or ""
local json_headers = { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }
local key_headers = { ["X-API-Key"] = key }
local latencies = {}
local created, created_count, tasks = {}, 0, {} -- created: the last KEPT_IDS order ids, a ring
local pending, started

-- wrk's thread:get copies flat tables only (a table of tables crashes it): each endpoint's
-- latencies are a global of their own, latency_<i>, and its failures a global number, failed_<i>
init = function(args)
  math.randomseed(os.time() * 100 + seed)
  for i, name in ipairs(ENDPOINTS) do
    latencies[name] = {}
    _G["latency_" .. i] = latencies[name]
    _G["failed_" .. i] = 0
  end
end

local function shop_request()
  local roll = math.random(10)
  if roll <= 6 or (roll <= 9 and created_count == 0) then
    return "POST /orders", wrk.format("POST", "/orders", json_headers, ORDER)
  elseif roll <= 9 then
    return "GET /orders/{id}", wrk.format("GET", "/orders/" .. created[math.random(math.min(created_count, KEPT_IDS))], key_headers)
  end
  return "GET /orders", wrk.format("GET", "/orders?page=1&count=20", key_headers)
end

local function analyst_request()
  local roll = math.random(10)
  if roll == 1 then
    local today = os.date("!%Y-%m-%d")
    return "POST /report/generate", wrk.format("POST", "/report/generate?report_date=" .. today, key_headers, "")
  elseif roll <= 5 and #tasks > 0 then
    return "GET /report/tasks/{id}", wrk.format("GET", "/report/tasks/" .. tasks[math.random(#tasks)], key_headers)
  end
  return "GET /report/all", wrk.format("GET", "/report/all?page=1&count=10", key_headers)
end

request = function()
  local raw
  if analyst then
    pending, raw = analyst_request()
  else
    pending, raw = shop_request()
  end
  started = now_ms()
  return raw
end

local analyst_pause_ms = tonumber(os.getenv("SCENARIO_ANALYST_PAUSE_MS") or "1000")
delay = function()
  return analyst and analyst_pause_ms or 0
end

-- the id an answer names, or nil: a success without one counts as a failure
local function accepted(name, status, body)
  if status ~= (EXPECTED[name] or 200) then
    return nil
  elseif name == "POST /orders" then
    return body:match('"id"%s*:%s*"([%x%-]+)"')
  elseif name == "POST /report/generate" then
    return body:match('"task_id"%s*:%s*"([%x%-]+)"')
  end
  return true
end

response = function(status, headers, body)
  local name = pending
  table.insert(latencies[name], now_ms() - started)
  local id = accepted(name, status, body)
  if not id then
    local failed = "failed_" .. INDEX[name]
    _G[failed] = _G[failed] + 1
  elseif name == "POST /orders" then
    created[created_count % KEPT_IDS + 1] = id
    created_count = created_count + 1
  elseif name == "POST /report/generate" then
    table.insert(tasks, id)
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then
    return 0
  end
  return sorted[math.max(1, math.ceil(#sorted * p / 100))]
end

local function figures(values, failed, seconds)
  table.sort(values)
  return string.format('{"requests":%d,"rate":%.2f,"failures":%d,"p50":%.2f,"p95":%.2f,"p99":%.2f}', #values,
    #values / seconds, failed, percentile(values, 50), percentile(values, 95), percentile(values, 99))
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local all, all_failed, parts = {}, 0, {}
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  for i, name in ipairs(ENDPOINTS) do
    local values, failed = {}, 0
    for _, thread in ipairs(threads) do
      for _, value in ipairs(thread:get("latency_" .. i)) do
        table.insert(values, value)
        table.insert(all, value)
      end
      failed = failed + thread:get("failed_" .. i)
    end
    all_failed = all_failed + failed
    table.insert(parts, string.format('"%s":%s', name, figures(values, failed, seconds)))
  end
  table.insert(parts, string.format('"all":%s', figures(all, all_failed + socket_errors, seconds)))
  io.write("SCENARIO {" .. table.concat(parts, ",") .. "}\n")
end
