-- wrk script: GET /v1/eligibility for a different imported address on each request.
-- Arguments (after `--`): API key, number of imported contacts, optional delay in ms
-- between a connection's requests (used to pace the latency run when wrk2 is missing).
local key, contacts, pause
local headers
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  key = args[1]
  contacts = tonumber(args[2] or "100000")
  pause = tonumber(args[3] or "0")
  headers = { ["Authorization"] = "Bearer " .. key }
  -- A different sequence per thread.
  math.randomseed(os.time() * 100 + (thread_id or 0))
  -- Defined only when pacing: wrk routes every request through a timer once a script
  -- has a delay() function, even when it answers 0.
  if pause > 0 then
    delay = function() return pause end
  end
end

function request()
  local i = math.random(0, contacts - 1)
  return wrk.format("GET", "/v1/eligibility?email=u" .. i .. "%40bench.example&subscription_type=blog-updates", headers)
end
