#!/usr/bin/env bash
# Service-profile benchmark: one exec run of `healthcheck profile NAME` per profile kind, side
# by side with the TripleO shell pipeline it replaces, built from the same tools:
#   http API (vhost):  profile keystone      vs get_url_from_vhost (awk/grep/sed) + curl
#   http API (INI):    profile glance-api    vs crudini + curl
#   RPC port:          profile nova-conductor PORT vs /proc awk + pgrep + find (healthcheck_port)
#   redis:             profile redis         vs grep/awk + socat (AUTH, PING)
# against real loopback peers (python HTTP server, redis-server, a process holding 200 sockets).
# Prints a Markdown table of median wall time and peak RSS on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

PATH="$PATH:/usr/sbin:/sbin" scripts/ensure-packages hyperfine=hyperfine curl=curl gawk=gawk \
    pgrep=procps /usr/bin/time=time python3=python3 crudini=crudini socat=socat \
    redis-server=redis-server

. bench/common.sh

python3 bench/http_server.py >"$work/http.port" &
pids+=($!)
python3 bench/socket_holder.py nova-conductor-bench 200 >"$work/rpc.port" &
pids+=($!)
redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --dir "$work" \
    --requirepass bench-pass >"$work/redis.log" 2>&1 &
pids+=($!)
for file in http.port rpc.port; do
    for _ in $(seq 100); do [ -s "$work/$file" ] && break; sleep 0.1; done
done
for _ in $(seq 100); do redis_ready=$( (exec 3<>/dev/tcp/127.0.0.1/"$redis_port") 2>/dev/null && echo y || true); [ -n "$redis_ready" ] && break; sleep 0.1; done
http_port=$(cat "$work/http.port")
rpc_port=$(cat "$work/rpc.port")

root="$work/root"
mkdir -p "$root/etc/httpd/conf.d" "$root/etc/glance" "$root/etc/redis"
cat >"$root/etc/httpd/conf.d/10-keystone_wsgi.conf" <<VHOST
<VirtualHost 127.0.0.1:$http_port>
  ServerName 127.0.0.1
  SSLEngine off
  WSGIScriptAlias / "/var/www/cgi-bin/keystone/main"
</VirtualHost>
VHOST
printf '[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = %s\n' "$http_port" >"$root/etc/glance/glance-api.conf"
printf 'bind 127.0.0.1\nport %s\nrequirepass bench-pass\n' "$redis_port" >"$root/etc/redis/redis.conf"
export HEALTHCHECK_CONFIG_ROOT=$root

# name | healthcheck command | shell baseline
cases=(
    "http API (vhost)|$bin profile keystone|bash bench/tripleo_vhost_curl.sh $root/etc/httpd/conf.d/10-keystone_wsgi.conf"
    "http API (INI)|$bin profile glance-api|bash bench/tripleo_ini_curl.sh $root/etc/glance/glance-api.conf"
    "RPC port|$bin profile nova-conductor $rpc_port|bash bench/tripleo_healthcheck_port.sh nova-conductor $rpc_port"
    "redis|$bin profile redis|bash bench/tripleo_redis.sh $root/etc/redis/redis.conf"
)

runs=${BENCH_RUNS:-100}
echo "| profile kind | healthcheck median | shell median | wall ratio | healthcheck peak RSS | shell peak RSS | RSS ratio |"
echo "|---|---|---|---|---|---|---|"
for case in "${cases[@]}"; do
    IFS='|' read -r name ours theirs <<<"$case"
    # Both sides must be healthy before they are timed.
    $ours >/dev/null || { echo "healthcheck failed: $ours" >&2; $ours >&2; exit 1; }
    $theirs >/dev/null || { echo "baseline failed: $theirs" >&2; exit 1; }
    hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/case.json" \
        -n ours "$ours" -n theirs "$theirs" >&2
    rss_ours=$(/usr/bin/time -f %M $ours 2>&1 >/dev/null | tail -n1)
    rss_theirs=$(/usr/bin/time -f %M $theirs 2>&1 >/dev/null | tail -n1)
    python3 - "$work/case.json" "$name" "$rss_ours" "$rss_theirs" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
ours, theirs = r["ours"]["median"], r["theirs"]["median"]
rss_ours, rss_theirs = int(sys.argv[3]), int(sys.argv[4])
print(f"| {sys.argv[2]} | {ours * 1000:.2f} ms | {theirs * 1000:.2f} ms | {theirs / ours:.1f}× | "
      f"{rss_ours / 1024:.2f} MiB | {rss_theirs / 1024:.2f} MiB | {rss_theirs / rss_ours:.1f}× |")
PY
done
