-- POST /api/v1/login/verify with a valid, never-used TOTP code. Each line of
-- the token file (`twostep dev login-tokens`) is one login token, used once:
-- `token account s0 wrong_code code(s0) … code(s0+9)`.
--
-- With ±1 step accepted and the replay guard's `last_step` only moving up,
-- an account can sign in three times within one 30-second step (codes of
-- steps now-1, now, now+1, in rising order). Every account's lines go to one
-- thread (account % threads), which remembers the last step it spent per
-- account and picks the lowest code that is both above it and still inside
-- the server's window: step(now + 2 s) - 1 … step(now) + 1, the 2-second
-- margin covering a request that reaches the server after the step turned.
-- An account with nothing left this step waits (its line is skipped for
-- later). Every request is thus a fresh, valid sign-in that writes the
-- replay guard, the session and the audit log. When no line is usable, the
-- request goes out with an unknown token and counts as `overflow`.
dofile(os.getenv("BENCH_D") .. "/report.lua")

local lines, next_line, spent

function init(args)
  lines, spent = {}, {}
  -- Accounts are dealt to the threads in turn, in the order they first
  -- appear: every thread reads the same file, so they agree. (By account
  -- number, the spread of 60,000 of 1,000,000 accounts gave one thread
  -- twice the lines of the other, and it ran dry halfway through.)
  local turn, accounts = 0, {}
  for l in io.lines(os.getenv("BENCH_FILE")) do
    local f = split(l)
    local owner = accounts[f[2]]
    if owner == nil then
      owner = turn % nthreads
      accounts[f[2]] = owner
      turn = turn + 1
    end
    if owner == id then
      table.insert(lines, f)
    end
  end
  next_line = 1
end

local headers = { ["Content-Type"] = "application/json" }

local function body_for(f)
  local now = os.time()
  local low = math.floor((now + 2) / 30) - 1
  local high = math.floor(now / 30) + 1
  local step = math.max(low, (spent[f[2]] or 0) + 1)
  local idx = step - tonumber(f[3])
  if step > high or idx < 0 or idx >= #f - 4 then
    return nil
  end
  spent[f[2]] = step
  return '{"login_token":"' .. f[1] .. '","method":"totp","code":"' .. f[5 + idx] .. '"}'
end

function request()
  -- Look a little ahead for a line whose account has a code left now.
  for look = next_line, math.min(next_line + 64, #lines) do
    local f = lines[look]
    local body = body_for(f)
    if body then
      lines[look] = lines[next_line]
      next_line = next_line + 1
      return wrk.format("POST", "/api/v1/login/verify", headers, body)
    end
  end
  overflow = overflow + 1
  return wrk.format("POST", "/api/v1/login/verify", headers,
    '{"login_token":"overflow","method":"totp","code":"000000"}')
end

function response(status, headers, body)
  count_statuses(status)
end
