-- wrk script: POST /v1/feedback with arrays of 1,000 soft bounces (optin's own JSON),
-- each request naming the next 1,000 of the loaded addresses, so that every item is a
-- known contact and a real write (bench/run.sh raises feedback.soft_bounce_limit so that
-- the soft bounces keep counting instead of marking the contacts unreachable).
-- Arguments (after `--`): API key, number of loaded contacts, items per request.
-- Prints the count of each HTTP status at the end ("status 200: N").
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  key = args[1]
  contacts = tonumber(args[2])
  per_request = tonumber(args[3] or "1000")
  -- Threads start far apart so that two rarely write the same contact at once.
  position = (id * 48611) % contacts
  statuses = {}
end

function request()
  local items = {}
  for i = 1, per_request do
    items[i] = string.format(
      '{"email":"u%d@bench.example","kind":"soft_bounce","reason":"452 4.2.2 mailbox full"}',
      position)
    position = (position + 1) % contacts
  end
  return wrk.format("POST", nil, {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }, "[" .. table.concat(items, ",") .. "]")
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
