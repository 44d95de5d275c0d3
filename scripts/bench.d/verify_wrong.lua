-- POST /api/v1/login/verify with a wrong TOTP code. Every seeded login token
-- (`twostep dev login-tokens`, one per account) is used at most USES times,
-- in USES rounds over the file, so no account reaches the 5 failures after
-- which the server answers 429 without evaluating, and no token reaches the
-- 5 wrong codes that kill it: every counted request runs the full verify
-- path (token lookup, throttle checks, decrypt, ±1-window TOTP, failure
-- counters, audit). Requests beyond that capacity go out with an unknown
-- token and are counted as `overflow` (the run is then not valid).
dofile(os.getenv("BENCH_D") .. "/report.lua")

local USES = 4
local lines, k

function init(args)
  lines = {}
  for _, l in ipairs(my_lines()) do
    local f = split(l)
    table.insert(lines, '{"login_token":"' .. f[1] .. '","method":"totp","code":"' .. f[4] .. '"}')
  end
  k = 0
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  local round, n = math.floor(k / #lines), k % #lines + 1
  k = k + 1
  local body
  if round < USES then
    body = lines[n]
  else
    overflow = overflow + 1
    body = '{"login_token":"overflow","method":"totp","code":"000000"}'
  end
  return wrk.format("POST", "/api/v1/login/verify", headers, body)
end

function response(status, headers, body)
  count_statuses(status)
end
