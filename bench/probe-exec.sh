#!/usr/bin/env bash
# Exec-mode benchmark for the probe binary, side by side with its baselines in one run:
#   1. http check: /bin/true (fork/exec), a minimal static C client (the floor of an exec HTTP
#      check, bench/exec_floor.c), `healthcheck http`, the `healthcheck_curl` drop-in and the
#      TripleO curl command line; BENCH_BASELINE_BIN, when set, adds another probe build's
#      `http` and `healthcheck_curl` to the same run (before/after)
#   2. port check on a process holding 10,000 sockets (BENCH_PORT_SOCKETS): healthcheck vs
#      TripleO's awk+find script
#   3. peak RSS of one exec check, and the stripped binary's size
# Prints a Markdown report on stdout. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-packages hyperfine=hyperfine curl=curl gawk=gawk pgrep=procps /usr/bin/time=time python3=python3 \
    gcc=gcc

. bench/common.sh

# The HTTP peer is the project's own `healthcheck serve`: native, answering /livez from memory,
# so the server's share of each exchange is small and steady next to the clients compared.
http_port=$(free_port)
touch "$work/alive"
HEALTHCHECK_SERVE_CONFIG="liveness: { check: { file: { path: $work/alive, maxAgeSeconds: 3153600000 } } }" \
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
gcc -static -O2 -o "$work/exec_floor" bench/exec_floor.c
# Every binary timed is a copy made here: how a file was written moves its exec time (the
# linker's output took 1.5x the CPU of a `cp` of it, both in the page cache), and images ship
# copies.
copy() {
    mkdir -p "$work/$2"
    cp "$1" "$work/$2/healthcheck"
    "$work/$2/healthcheck" install-compat "$work/$2" >/dev/null
}
copy "$bin" probe
baseline=()
if [ -n "${BENCH_BASELINE_BIN:-}" ]; then
    copy "$BENCH_BASELINE_BIN" baseline
    baseline=(-n baseline-healthcheck "$work/baseline/healthcheck http $url"
        -n baseline-healthcheck_curl "$work/baseline/healthcheck_curl $url")
fi
write_out='\n%{http_code} %{remote_ip}:%{remote_port} %{time_total} seconds\n'

# Each side must give the expected answer before it is timed.
"$bin" http "$url" >/dev/null
"$work/exec_floor" 127.0.0.1 "$http_port" /livez >/dev/null
"$work/probe/healthcheck_curl" "$url" >/dev/null
curl -g -k -q -s -S --fail -o /dev/null --max-time 10 --user-agent curl-healthcheck --write-out "$write_out" "$url" >/dev/null
"$bin" port "$marker" "$target_port" >/dev/null
bash bench/tripleo_healthcheck_port.sh "$marker" "$target_port"

# The load of other work on the machine drifts while hyperfine runs one command after the other:
# several short rounds (BENCH_ROUNDS of BENCH_RUNS runs each), reported as medians over the
# rounds, keep the drift out of the ratios.
rounds=${BENCH_ROUNDS:-10}
for round in $(seq "$rounds"); do
    hyperfine -N --warmup 20 --runs "${BENCH_RUNS:-100}" --export-json "$work/http-$round.json" \
        -n true "/bin/true" \
        -n floor "$work/exec_floor 127.0.0.1 $http_port /livez" \
        -n healthcheck "$work/probe/healthcheck http $url" \
        -n healthcheck_curl "$work/probe/healthcheck_curl $url" \
        "${baseline[@]}" \
        -n curl "curl -g -k -q -s -S --fail -o /dev/null --max-time 10 --user-agent curl-healthcheck --write-out '$write_out' $url" \
        >&2
done
hyperfine -N --warmup 3 --runs "${BENCH_PORT_RUNS:-30}" --export-json "$work/port.json" \
    -n healthcheck "$bin port $marker $target_port" \
    -n tripleo "bash bench/tripleo_healthcheck_port.sh $marker $target_port" \
    >&2

rss_http=$(/usr/bin/time -f %M "$bin" http "$url" 2>&1 >/dev/null | tail -n1)
rss_port=$(/usr/bin/time -f %M "$bin" port "$marker" "$target_port" 2>&1 >/dev/null | tail -n1)
size=$(stat -c %s "$bin")

python3 - "$work" "$work/port.json" "$rss_http" "$rss_port" "$size" "$sockets" <<'PY'
import glob, json, statistics, sys
rounds = [{r["command"]: r for r in json.load(open(f))["results"]}
          for f in glob.glob(f"{sys.argv[1]}/http-*.json")]
# Over the rounds: the median of each round's median wall time, of each round's ratio of
# medians (so a round slowed by other work counts once, for every command alike), and of the
# mean CPU time (user + system: what scheduling delays do not stretch).
over = lambda f: statistics.median(f(r) for r in rounds)
wall = lambda name: over(lambda r: r[name]["median"]) * 1000
cpu = lambda name: over(lambda r: r[name]["user"] + r[name]["system"]) * 1000
ratio = lambda name, base: over(lambda r: r[name]["median"] / r[base]["median"])
port = {r["command"]: r for r in json.load(open(sys.argv[2]))["results"]}
ms = lambda r: r["median"] * 1000
print("| benchmark | median | CPU | ratio |")
print("|---|---|---|---|")
print(f"| http: /bin/true (fork/exec) | {wall('true'):.2f} ms | {cpu('true'):.2f} ms | 1.00× true |")
print(f"| http: static C client (floor) | {wall('floor'):.2f} ms | {cpu('floor'):.2f} ms | {ratio('floor', 'true'):.2f}× true |")
for name in ["healthcheck", "healthcheck_curl", "baseline-healthcheck", "baseline-healthcheck_curl"]:
    if name in rounds[0]:
        print(f"| http: {name} | {wall(name):.2f} ms | {cpu(name):.2f} ms | "
              f"{ratio(name, 'floor'):.2f}× floor, {ratio(name, 'true'):.2f}× true |")
print(f"| http: curl (TripleO flags) | {wall('curl'):.2f} ms | {cpu('curl'):.2f} ms | {ratio('curl', 'healthcheck'):.1f}× slower than healthcheck |")
n = f"{int(sys.argv[6]):,}"
print(f"| port, {n} sockets: healthcheck | {ms(port['healthcheck']):.2f} ms | | |")
print(f"| port, {n} sockets: TripleO awk+find | {ms(port['tripleo']):.2f} ms | | {port['tripleo']['median'] / port['healthcheck']['median']:.1f}× slower than healthcheck |")
print()
print(f"Peak RSS of one exec check: http {int(sys.argv[3]) / 1024:.2f} MiB, port ({n} sockets) {int(sys.argv[4]) / 1024:.2f} MiB. "
      f"Stripped static binary: {int(sys.argv[5]) / 1048576:.2f} MiB.")
PY
