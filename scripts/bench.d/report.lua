-- Shared by every wrk script of scripts/bench: numbers the threads, counts
-- answers by status (only where a script asks, since a Lua response hook
-- costs wrk time), and prints one machine-readable RESULT line at the end.
--
-- Environment: BENCH_THREADS (wrk -t), BENCH_FILE (token file, if any).

local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
id = 0
nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
s2xx, s401, s429, sother, overflow = 0, 0, 0, 0, 0

function count_statuses(status)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status == 401 then
    s401 = s401 + 1
  elseif status == 429 then
    s429 = s429 + 1
  else
    sother = sother + 1
  end
end

-- This thread's share of the token file: lines id+1, id+1+n, id+1+2n, …
-- (so every line of one account lands in one thread, in file order).
function my_lines()
  local path = os.getenv("BENCH_FILE")
  local mine, n = {}, 0
  for line in io.lines(path) do
    if n % nthreads == id then
      table.insert(mine, line)
    end
    n = n + 1
  end
  return mine
end

function split(line)
  local t = {}
  for w in line:gmatch("%S+") do
    table.insert(t, w)
  end
  return t
end

function done(summary, latency, requests)
  local c = { s2xx = 0, s401 = 0, s429 = 0, sother = 0, overflow = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(c) do
      c[k] = c[k] + (tonumber(t:get(k)) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f non2xx=%d "
      .. "sock_errors=%d s2xx=%d s401=%d s429=%d sother=%d overflow=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout, c.s2xx, c.s401, c.s429, c.sother, c.overflow))
end
