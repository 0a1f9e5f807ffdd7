-- wrk pacing: each connection waits PACE_MS between requests, so CONNECTIONS / PACE_MS * 1000
-- requests per second arrive (wrk itself has no fixed-rate mode).
local pace = tonumber(os.getenv("PACE_MS") or "2")
function delay()
    return pace
end
