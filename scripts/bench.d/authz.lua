-- The forward-auth check as nginx asks it (GET /api/authz/auth-request with
-- X-Original-URL), a seeded session as the bearer token, over a `one_factor`
-- rule (forward-auth.toml): the session read and the rules on every request.
-- Expected: 200 for every request.
dofile(os.getenv("BENCH_D") .. "/report.lua")

local tokens, i

function init(args)
  tokens = my_lines()
  i = 0
end

function request()
  i = i % #tokens + 1
  return wrk.format("GET", "/api/authz/auth-request", {
    ["Authorization"] = "Bearer " .. tokens[i],
    ["X-Original-URL"] = "https://app.bench.test/reports/" .. i,
    ["X-Original-Method"] = "GET",
  })
end
