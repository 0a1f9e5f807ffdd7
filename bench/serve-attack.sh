#!/usr/bin/env bash
# `healthcheck serve` under attack. Prints a Markdown report on stdout. Loopback only; root for
# the cgroup v1 memory limit (skipped, and said so, without it).
#   1. /livez p50/p99/max for a good client (a new connection per request, as the kubelet
#      makes them): no attack, then with 1,000 slowloris connections open (a byte a second),
#      then with 1,000 slowloris plus a 10,000-connection idle flood
#   2. serve's peak memory during 1. (VmHWM), and the same attack with serve in a 32 MiB
#      memory cgroup (v1): still answering, never OOM-killed, the cgroup's max usage
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-packages python3=python3

. bench/common.sh
requests=${BENCH_REQUESTS:-2000}
slowloris=${BENCH_SLOWLORIS:-1000}
flood=${BENCH_FLOOD:-10000}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
config="{ listen: '127.0.0.1:0', liveness: { check: { process: { pattern: . } }, interval: 1h } }"

# Starts serve; sets serve_pid and serve_addr.
start_serve() {
    HEALTHCHECK_SERVE_CONFIG="$config" "$bin" serve 2>"$work/serve.log" &
    serve_pid=$!
    pids+=("$serve_pid")
    for _ in $(seq 100); do grep -qs "listening on" "$work/serve.log" && break; sleep 0.05; done
    serve_addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$work/serve.log")
    [ -n "$serve_addr" ] || { cat "$work/serve.log" >&2; exit 1; }
}
row() { # label, json
    python3 -c '
import json, sys
r = json.loads(sys.argv[2])
keys = ["requests", "failures", "p50_ms", "p99_ms", "max_ms", "attackers_closed_by_serve"]
print("| " + " | ".join([sys.argv[1]] + [str(r[k]) for k in keys]) + " |")' "$1" "$2"
}

echo "## healthcheck serve under attack"
echo
echo "\`bench/serve-attack.sh\` ($requests sequential /livez requests per row, load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| attack | requests | failed | p50 ms | p99 ms | max ms | attackers closed by serve |"
echo "|---|---|---|---|---|---|---|"
start_serve
row "none" "$(python3 bench/serve_attack.py "$serve_addr" "$requests" 0 0)"
row "$slowloris slowloris" "$(python3 bench/serve_attack.py "$serve_addr" "$requests" "$slowloris" 0)"
row "$slowloris slowloris + $flood idle" "$(python3 bench/serve_attack.py "$serve_addr" "$requests" "$slowloris" "$flood")"
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$serve_pid/status")
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
echo
echo "serve's peak RSS over the three rows: $hwm KiB"

cg=/sys/fs/cgroup/memory/healthcheck-bench-$$
if mkdir "$cg" 2>/dev/null; then
    trap 'cleanup; rmdir "$cg" 2>/dev/null || true' EXIT
    echo $((32 * 1024 * 1024)) >"$cg/memory.limit_in_bytes"
    # The shell enters the cgroup to start serve, then leaves it.
    sh -c "echo \$\$ > $cg/cgroup.procs; exec env HEALTHCHECK_SERVE_CONFIG=\"$config\" $bin serve" 2>"$work/serve.log" &
    serve_pid=$!
    pids+=("$serve_pid")
    for _ in $(seq 100); do grep -qs "listening on" "$work/serve.log" && break; sleep 0.05; done
    serve_addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$work/serve.log")
    result=$(python3 bench/serve_attack.py "$serve_addr" "$requests" "$slowloris" "$flood")
    alive=$(kill -0 "$serve_pid" 2>/dev/null && echo yes || echo "no (killed)")
    echo
    echo "In a 32 MiB memory cgroup (v1), $slowloris slowloris + $flood idle:"
    echo
    echo "| attack | requests | failed | p50 ms | p99 ms | max ms | attackers closed by serve |"
    echo "|---|---|---|---|---|---|---|"
    row "in 32 MiB" "$result"
    echo
    echo "serve alive after: $alive; cgroup max usage $(($(cat "$cg/memory.max_usage_in_bytes") / 1024)) KiB, OOM kills: $(awk '/oom_kill /{print $2}' "$cg/memory.oom_control" 2>/dev/null || echo 0)"
    kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null || true
else
    echo
    echo "(no cgroup v1 memory controller writable here: the 32 MiB run is skipped)"
fi
