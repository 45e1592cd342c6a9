-- wrk script for bench/replicas: POST the platform's v1 event, a new job per request
-- (job ids are unique across concurrent wrk processes through BENCH_PREFIX), routed to
-- the build-only hook (`design_system_id: intake`), so intake alone is measured.
-- The webhook token comes from BENCH_TOKEN.

local counter = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
  prefix = os.getenv("BENCH_PREFIX") or "bench"
end

local template = [[
{"event":"job:updated",
 "workspace":{"id":"1","name":"Example workspace"},
 "designSystem":{"id":"intake","name":"Example Design System"},
 "designSystemVersion":{"id":"3","name":"A version name","version":"v0.1"},
 "exporter":{"id":"4","name":"Example exporter"},
 "hook":{"id":"5","name":"Example hook"},
 "job":{"id":"JOBID","status":"Success",
        "logs":[{"id":"","time":"2021-03-25T16:13:28.804Z","type":"info","message":"Finished exporting"}],
        "urls":["https://artifacts.invalid/result.zip"]}}
]]

function request()
  counter = counter + 1
  local id = string.format("%s-%d-%d", prefix, thread_id, counter)
  return wrk.format(nil, nil, nil, (string.gsub(template, "JOBID", id)))
end
