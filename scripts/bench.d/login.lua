-- POST /api/v1/login with the right password for seeded accounts spread over
-- BENCH_ACCOUNTS (`twostep dev seed`): Argon2id-bound by design. Accounts
-- have TOTP, so each answer is a login token (second_factor_required).
dofile(os.getenv("BENCH_D") .. "/report.lua")

local accounts = tonumber(os.getenv("BENCH_ACCOUNTS"))
local password = os.getenv("BENCH_PASSWORD")
local headers = { ["Content-Type"] = "application/json" }
local k

function init(args)
  k = 0
end

function request()
  local i = ((k * nthreads + id) * 7919) % accounts
  k = k + 1
  local body = string.format('{"email":"bench%07d@bench.invalid","password":"%s"}', i, password)
  return wrk.format("POST", "/api/v1/login", headers, body)
end

function response(status, headers, body)
  count_statuses(status)
end
