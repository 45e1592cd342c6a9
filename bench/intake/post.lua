-- wrk script: POST the platform's v1 event with a distinct job id per request, so that
-- every request is a new job (no deduplication shortcut). Usage:
--   wrk -s bench/intake/post.lua ... http://ADDR/webhooks/supernova
-- The webhook token comes from the environment (BENCH_TOKEN).

local counter = 0
local threads = {}

-- `thread_id` becomes a global in each thread's own Lua state.
function setup(thread)
  thread:set("thread_id", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
end

local template = [[
{"event":"job:updated",
 "workspace":{"id":"1","name":"Example workspace"},
 "designSystem":{"id":"2","name":"Example Design System"},
 "designSystemVersion":{"id":"3","name":"A version name","version":"v0.1"},
 "exporter":{"id":"4","name":"Example exporter"},
 "hook":{"id":"5","name":"Example hook"},
 "job":{"id":"JOBID","status":"Success",
        "logs":[{"id":"","time":"2021-03-25T16:13:28.804Z","type":"info","message":"Finished exporting"}],
        "urls":["https://artifacts.invalid/result.zip"]}}
]]

function request()
  counter = counter + 1
  local id = string.format("bench-%d-%d-%d", os.time(), thread_id, counter)
  local body = string.gsub(template, "JOBID", id)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  io.write(string.format("non-2xx answers: %d, socket errors: %d\n", non2xx,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
