-- wrk script: POST /v1/signups with a new address on every request.
-- Arguments (after `--`): a run tag, so that addresses never repeat across runs.
-- Addresses are s<tag>-<thread>-<counter>@bench.example.
-- Prints the count of each HTTP status at the end ("status 202: N").
--
-- optin limits signups per client IP (signup.max_signups_per_ip per window). In
-- production the clients are many and optin sits behind a proxy; run.sh trusts
-- 127.0.0.1 as that proxy (server.trusted_proxies) and each request here comes from
-- its own client address in X-Forwarded-For (10.<thread>.x.y), so the limit is checked
-- on every request but not hit.
local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local tag, counter, octet = "0", 0, 0

function init(args)
  octet = (thread_id or 0) % 256
  tag = (args[1] or "0") .. "-" .. tostring(thread_id or 0)
  statuses = {}
end

function request()
  counter = counter + 1
  local n = counter % 65536
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Forwarded-For"] = "10." .. octet .. "." .. math.floor(n / 256) .. "." .. (n % 256),
  }
  local body = '{"email":"s' .. tag .. '-' .. counter
    .. '@bench.example","subscription_types":["blog-updates"],"locale":"en"}'
  return wrk.format("POST", "/v1/signups", headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + n
    end
  end
  for status, n in pairs(total) do
    io.write(string.format("status %d: %d\n", status, n))
  end
end
