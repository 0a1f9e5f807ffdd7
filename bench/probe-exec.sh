#!/usr/bin/env bash
# Exec-mode benchmark for the probe binary, side by side with its baselines in one run:
#   1. http check: healthcheck vs the TripleO curl command line vs /bin/true (fork/exec floor)
#   2. port check on a process holding 10,000 sockets (BENCH_PORT_SOCKETS): healthcheck vs
#      TripleO's awk+find script
#   3. peak RSS of one exec check, and the stripped binary's size
# Prints a Markdown report on stdout. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-packages hyperfine=hyperfine curl=curl gawk=gawk pgrep=procps /usr/bin/time=time python3=python3

. bench/common.sh

# The HTTP peer is the project's own `healthcheck serve`: native, answering /livez from memory,
# so the server's share of each exchange is small and steady next to the clients compared.
http_port=$(free_port)
HEALTHCHECK_SERVE_CONFIG='liveness: { check: { file: { path: /, maxAgeSeconds: 3153600000 } } }' \
    "$bin" serve --listen "127.0.0.1:$http_port" 2>"$work/serve.log" &
pids+=($!)
marker="bench-holder-$$"
sockets=${BENCH_PORT_SOCKETS:-10000}
python3 bench/socket_holder.py "$marker" "$sockets" >"$work/holder.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/holder.port" ] && break; sleep 0.1; done
target_port=$(cat "$work/holder.port")
url="http://127.0.0.1:$http_port/livez"
for _ in $(seq 100); do "$bin" --timeout 1 http "$url" >/dev/null 2>&1 && break; sleep 0.1; done
write_out='\n%{http_code} %{remote_ip}:%{remote_port} %{time_total} seconds\n'

# Each side must give the expected answer before it is timed.
"$bin" http "$url" >/dev/null
curl -g -k -q -s -S --fail -o /dev/null --max-time 10 --user-agent curl-healthcheck --write-out "$write_out" "$url" >/dev/null
"$bin" port "$marker" "$target_port" >/dev/null
bash bench/tripleo_healthcheck_port.sh "$marker" "$target_port"

runs=${BENCH_RUNS:-200}
hyperfine -N --warmup 20 --runs "$runs" --export-json "$work/http.json" \
    -n true "/bin/true" \
    -n healthcheck "$bin http $url" \
    -n curl "curl -g -k -q -s -S --fail -o /dev/null --max-time 10 --user-agent curl-healthcheck --write-out '$write_out' $url" \
    >&2
hyperfine -N --warmup 3 --runs "${BENCH_PORT_RUNS:-30}" --export-json "$work/port.json" \
    -n healthcheck "$bin port $marker $target_port" \
    -n tripleo "bash bench/tripleo_healthcheck_port.sh $marker $target_port" \
    >&2

rss_http=$(/usr/bin/time -f %M "$bin" http "$url" 2>&1 >/dev/null | tail -n1)
rss_port=$(/usr/bin/time -f %M "$bin" port "$marker" "$target_port" 2>&1 >/dev/null | tail -n1)
size=$(stat -c %s "$bin")

python3 - "$work/http.json" "$work/port.json" "$rss_http" "$rss_port" "$size" "$sockets" <<'PY'
import json, sys
http = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
port = {r["command"]: r for r in json.load(open(sys.argv[2]))["results"]}
ms = lambda r: r["median"] * 1000
print("| benchmark | median | ratio |")
print("|---|---|---|")
print(f"| http: /bin/true (fork/exec floor) | {ms(http['true']):.2f} ms | 1.00× |")
print(f"| http: healthcheck | {ms(http['healthcheck']):.2f} ms | {http['healthcheck']['median'] / http['true']['median']:.2f}× floor |")
print(f"| http: curl (TripleO flags) | {ms(http['curl']):.2f} ms | {http['curl']['median'] / http['healthcheck']['median']:.1f}× slower than healthcheck |")
n = f"{int(sys.argv[6]):,}"
print(f"| port, {n} sockets: healthcheck | {ms(port['healthcheck']):.2f} ms | |")
print(f"| port, {n} sockets: TripleO awk+find | {ms(port['tripleo']):.2f} ms | {port['tripleo']['median'] / port['healthcheck']['median']:.1f}× slower than healthcheck |")
print()
print(f"Peak RSS of one exec check: http {int(sys.argv[3]) / 1024:.2f} MiB, port ({n} sockets) {int(sys.argv[4]) / 1024:.2f} MiB. "
      f"Stripped static binary: {int(sys.argv[5]) / 1048576:.2f} MiB.")
PY
