-- wrk script: POST /v1/eligibility with a prebuilt body of 10,000 addresses.
-- Arguments (after `--`): API key, path of the JSON body file.
function init(args)
  local file = assert(io.open(args[2], "rb"))
  local body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Authorization"] = "Bearer " .. args[1]
  wrk.headers["Content-Type"] = "application/json"
end
