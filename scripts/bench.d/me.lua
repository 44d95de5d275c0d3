-- GET /api/v1/me with a bearer token, rotating over seeded sessions
-- (`twostep dev sessions`). Expected: 200 for every request.
dofile(os.getenv("BENCH_D") .. "/report.lua")

local tokens, i

function init(args)
  tokens = my_lines()
  i = 0
end

function request()
  i = i % #tokens + 1
  return wrk.format("GET", "/api/v1/me", { ["Authorization"] = "Bearer " .. tokens[i] })
end
