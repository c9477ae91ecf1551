-- The load scenario through the gateway, for wrk with one connection per thread (wrk -tN -cN):
-- each thread is one user. Shops create orders, read one of theirs back and list orders, without
-- pause (weights 6:3:1); the last SCENARIO_ANALYSTS of the SCENARIO_USERS threads, once a second
-- (SCENARIO_ANALYST_PAUSE_MS), read report pages and task states and now and then (one call in
-- ten) ask for today's report. Every request carries SCENARIO_API_KEY.
-- wrk keeps one latency table for the whole run, and its thread:get cannot hand a long table
-- back (it recurses once per element and overflows), so each thread times its own requests
-- (LuaJIT's ffi, CLOCK_MONOTONIC) and writes one line per answer, "endpoint<TAB>ms<TAB>ok", into
-- SCENARIO_OUT/<thread>.tsv; done() prints the run's length and socket errors as one JSON line.
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

local EXPECTED = { ["POST /orders"] = 201, ["POST /report/generate"] = 202 } -- the rest: 200
local ORDER = '{"customer_email":"load@example.com","currency":"EUR","items":'
  .. '[{"sku":"SKU-1","quantity":2,"unit_price":"9.99"},{"sku":"SKU-2","quantity":1,"unit_price":"5.00"}]}'
local KEPT_IDS = 10000

-- the main state: hand each thread its role and number
local threads = 0
setup = function(thread)
  threads = threads + 1
  local analysts = tonumber(os.getenv("SCENARIO_ANALYSTS") or "2")
  local users = tonumber(os.getenv("SCENARIO_USERS") or "") or error("SCENARIO_USERS: set it to wrk's -t")
  thread:set("analyst", threads > users - analysts)
  thread:set("number", threads)
end

-- each thread's state
local key = os.getenv("SCENARIO_API_KEY") or ""
local json_headers = { ["X-API-Key"] = key, ["Content-Type"] = "application/json" }
local key_headers = { ["X-API-Key"] = key }
local created, created_count, tasks = {}, 0, {} -- created: the last KEPT_IDS order ids, a ring
local pending, started, out

init = function(args)
  math.randomseed(os.time() * 100 + number)
  local directory = os.getenv("SCENARIO_OUT") or error("SCENARIO_OUT: a directory for the answers' timings")
  out = assert(io.open(directory .. "/" .. number .. ".tsv", "w")) -- flushed when wrk exits
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
  local ms = now_ms() - started
  local id = accepted(pending, status, body)
  out:write(pending, "\t", string.format("%.3f", ms), "\t", id and "1" or "0", "\n")
  if pending == "POST /orders" and id then
    created[created_count % KEPT_IDS + 1] = id
    created_count = created_count + 1
  elseif pending == "POST /report/generate" and id then
    table.insert(tasks, id)
  end
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format('SCENARIO {"seconds":%.3f,"socket_errors":%d}\n', summary.duration / 1e6,
    errors.connect + errors.read + errors.write + errors.timeout))
end
