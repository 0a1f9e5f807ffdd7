#!/usr/bin/env bash
# HTTP mode (`healthcheck serve`) benchmark. Prints a Markdown report on stdout. Loopback only.
#   1. /readyz under wrk from a second process, serve pinned to one core: saturated
#      throughput, then a paced 5,000 req/s run for p99 latency
#   2. CPU cost of 100 checks per second: one serve process (two roles, each an allOf of 50 http
#      checks, 1 s interval) vs 100 exec runs per second of the binary (one http check each)
#   3. idle RSS of serve with 10 checks, and the stripped binary's size
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-packages wrk=wrk taskset=util-linux python3=python3

. bench/common.sh
seconds=${BENCH_SECONDS:-30}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
ticks=$(getconf CLK_TCK)

python3 bench/http_server.py >"$work/http.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/http.port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/http.port")/"

# Starts serve with the YAML in $1 (on core $2 if given); sets serve_pid and serve_addr.
start_serve() {
    local pin=()
    [ -n "${2:-}" ] && pin=(taskset -c "$2")
    HEALTHCHECK_SERVE_CONFIG="$1" "${pin[@]}" "$bin" serve 2>"$work/serve.log" &
    serve_pid=$!
    pids+=("$serve_pid")
    for _ in $(seq 100); do grep -qs "listening on" "$work/serve.log" && break; sleep 0.05; done
    serve_addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$work/serve.log")
    [ -n "$serve_addr" ] || { cat "$work/serve.log" >&2; exit 1; }
}

# CPU seconds (user + system, all threads) a process has used so far.
cpu_seconds() {
    awk -v t="$ticks" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"
}

# allOf of $1 http checks of $url, as YAML.
checks() {
    local members=()
    for _ in $(seq "$1"); do members+=("{ http: { url: \"$url\" } }"); done
    local IFS=,
    echo "{ allOf: [ ${members[*]} ] }"
}

# 1. /readyz latency and throughput.
start_serve "{ listen: '127.0.0.1:0', readiness: { check: { http: { url: '$url' } }, interval: 1s } }" 0
until curl -fs "http://$serve_addr/readyz" >/dev/null; do sleep 0.1; done
taskset -c 1 wrk -t1 -c8 -d"${seconds}s" --latency "http://$serve_addr/readyz" >"$work/wrk-max.txt"
PACE_MS=2 taskset -c 1 wrk -t1 -c12 -d"${seconds}s" --latency -s bench/pace.lua \
    "http://$serve_addr/readyz" >"$work/wrk-paced.txt"
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

# 2a. serve: 100 checks per second.
start_serve "{ listen: '127.0.0.1:0', liveness: { check: $(checks 50), interval: 1s }, readiness: { check: $(checks 50), interval: 1s } }"
until curl -fs "http://$serve_addr/readyz" >/dev/null; do sleep 0.1; done
runs_before=$(curl -fs "http://$serve_addr/metrics" | awk '/^healthcheck_run_duration_seconds_count/ { n += $2 } END { print n }')
cpu_before=$(cpu_seconds "$serve_pid")
sleep "$seconds"
cpu_after=$(cpu_seconds "$serve_pid")
runs_after=$(curl -fs "http://$serve_addr/metrics" | awk '/^healthcheck_run_duration_seconds_count/ { n += $2 } END { print n }')
failed=$(curl -fs "http://$serve_addr/metrics" | awk '/^healthcheck_runs_total.*result="failure"/ { n += $2 } END { print n }')
[ "$failed" = 0 ] || { echo "serve: $failed failed runs" >&2; exit 1; }
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true

# 2b. exec: 100 runs per second of the binary.
read -r exec_cpu exec_runs exec_failures exec_elapsed < <(python3 bench/exec_rate.py 100 "$seconds" "$bin" http "$url")
[ "$exec_failures" = 0 ] || { echo "exec: $exec_failures failed runs" >&2; exit 1; }

# 3. idle RSS with 10 checks (after they have run a few times).
start_serve "{ listen: '127.0.0.1:0', liveness: { check: $(checks 5), interval: 1s }, readiness: { check: $(checks 5), interval: 1s } }"
sleep 5
curl -fs "http://$serve_addr/" >/dev/null
rss_kib=$(awk '/^VmRSS/ { print $2 }' "/proc/$serve_pid/status")
threads=$(awk '/^Threads/ { print $2 }' "/proc/$serve_pid/status")
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
size=$(stat -c %s "$bin")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "Host: $(nproc) cores; load average before $load_before, after $load_after."
echo
echo "| /readyz | throughput | p50 | p99 | errors |"
echo "|---|---|---|---|---|"

python3 - "$work/wrk-max.txt" "$work/wrk-paced.txt" "$cpu_before" "$cpu_after" "$runs_before" "$runs_after" \
    "$exec_cpu" "$exec_runs" "$exec_elapsed" "$rss_kib" "$threads" "$size" "$seconds" <<'PY'
import re, sys
(max_txt, paced_txt, cpu0, cpu1, runs0, runs1, exec_cpu, exec_runs, exec_elapsed, rss, threads,
 size, seconds) = sys.argv[1:]

def wrk(path):
    text = open(path).read()
    def ms(label):
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", text)
    return rps, ms("50%"), ms("99%"), errors.group(0) if errors else "none"

for name, path in [("saturated, 8 connections", max_txt), ("paced, 12 connections × 1 request / 2 ms", paced_txt)]:
    rps, p50, p99, errors = wrk(path)
    print(f"| /readyz {name} | {rps:,.0f} req/s | p50 {p50:.3f} ms | p99 {p99:.3f} ms | errors: {errors} |")
print()
# serve runs are allOf of 50 checks each.
serve_checks = (float(runs1) - float(runs0)) * 50
serve_cpu = float(cpu1) - float(cpu0)
serve_per_k = serve_cpu / serve_checks * 1000
exec_per_k = float(exec_cpu) / float(exec_runs) * 1000
print("| 100 http checks per second | checks run | CPU seconds | CPU seconds per 1,000 checks |")
print("|---|---|---|---|")
print(f"| serve (one process) | {serve_checks:,.0f} in {seconds} s | {serve_cpu:.2f} | {serve_per_k:.4f} |")
print(f"| exec (a process per check) | {int(exec_runs):,} in {float(exec_elapsed):.0f} s | {float(exec_cpu):.2f} | {exec_per_k:.4f} |")
print(f"\nserve is {exec_per_k / serve_per_k:.0f}× cheaper per check.\n")
print(f"Idle RSS of serve with 10 checks: {int(rss) / 1024:.2f} MiB ({threads} threads). "
      f"Stripped static binary: {int(size) / 1048576:.2f} MiB.")
PY
