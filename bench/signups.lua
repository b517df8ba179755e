-- wrk script: POST /v1/signups with a new address on every request.
-- Arguments (after `--`): a run tag, so that addresses never repeat across runs.
-- Addresses are s<run>-<thread>-<counter>@bench.example.
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

local tag, counter = "0", 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  tag = (args[1] or "0") .. "-" .. tostring(thread_id)
end

function request()
  counter = counter + 1
  local body = '{"email":"s' .. tag .. '-' .. counter
    .. '@bench.example","subscription_types":["blog-updates"],"locale":"en"}'
  return wrk.format("POST", "/v1/signups", headers, body)
end
