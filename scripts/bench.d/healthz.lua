-- GET /healthz: wrk's static request (no request hook), the HTTP ceiling.
dofile(os.getenv("BENCH_D") .. "/report.lua")
