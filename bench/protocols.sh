#!/usr/bin/env bash
# Native protocol checks against the client tools they replace, on private loopback servers:
#   1. healthcheck mysql (log in, SELECT 1) vs `mysql -e 'SELECT 1'` (Debian mariadb-client)
#   2. healthcheck amqp (handshake to Open-Ok as guest) vs `rabbitmq-diagnostics ping` and
#      `rabbitmq-diagnostics check_port_connectivity`
# Median wall time (hyperfine) and peak RSS (GNU time) of one exec run each.
# Prints a Markdown report on stdout. Loopback only; starts and stops its own servers.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-packages hyperfine=hyperfine /usr/bin/time=time python3=python3 \
    mariadbd=mariadb-server mysql=mariadb-client rabbitmq-server=rabbitmq-server

. bench/common.sh
groups=()
cleanup() {
    for group in "${groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null || true; done
    sleep 0.5
    rm -rf "$work"
}
trap cleanup EXIT

wait_port() {
    for _ in $(seq 900); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "error: $2 did not listen on port $1; log: $3" >&2
    tail -n 30 "$3" >&2
    exit 1
}

# MariaDB: private data directory, a mysql_native_password user.
user=monitor password=benchpass
root_flag=()
[ "$(id -u)" -eq 0 ] && root_flag=(--user=root)
mariadb-install-db --no-defaults --datadir="$work/mysql" "${root_flag[@]}" \
    --auth-root-authentication-method=normal --skip-test-db >/dev/null
cat >"$work/init.sql" <<SQL
CREATE USER '$user'@'127.0.0.1' IDENTIFIED VIA mysql_native_password USING PASSWORD('$password');
SQL
mysql_port=$(free_port)
setsid mariadbd --no-defaults --datadir="$work/mysql" --socket="$work/mysqld.sock" \
    --port="$mysql_port" --bind-address=127.0.0.1 --skip-name-resolve "${root_flag[@]}" \
    --pid-file="$work/mariadbd.pid" --log-error="$work/mariadbd.log" --init-file="$work/init.sql" \
    </dev/null >/dev/null 2>&1 &
groups+=($!)
disown

# RabbitMQ: private node, cookie, epmd and ports. RabbitMQ's own scripts run as the caller;
# the /usr/sbin wrappers would switch to the rabbitmq user.
rabbit_bin=/usr/lib/rabbitmq/bin
mkdir -p "$work/home"
printf 'BENCHCOOKIE%s' "$$" >"$work/home/.erlang.cookie"
chmod 400 "$work/home/.erlang.cookie"
echo '[].' >"$work/enabled_plugins"
amqp_port=$(free_port)
node="bench-$$@localhost"
export HOME="$work/home" ERL_EPMD_PORT RABBITMQ_NODENAME="$node"
ERL_EPMD_PORT=$(free_port)
RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$amqp_port RABBITMQ_DIST_PORT=$(free_port) \
    RABBITMQ_MNESIA_BASE="$work/mnesia" RABBITMQ_LOG_BASE="$work/rabbitlog" \
    RABBITMQ_PID_FILE="$work/rabbitmq.pid" RABBITMQ_ENABLED_PLUGINS_FILE="$work/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$work/rabbitmq" \
    setsid sh -c 'epmd -port "$ERL_EPMD_PORT" & exec "$0"' "$rabbit_bin/rabbitmq-server" \
    </dev/null >"$work/rabbitmq.log" 2>&1 &
groups+=($!)
disown

wait_port "$mysql_port" mariadbd "$work/mariadbd.log"
wait_port "$amqp_port" rabbitmq-server "$work/rabbitmq.log"

export DB_PASSWORD=$password AMQP_PASSWORD=guest
probe_mysql="$bin mysql --user $user --password-env DB_PASSWORD 127.0.0.1:$mysql_port"
client_mysql="mysql -h 127.0.0.1 -P $mysql_port -u $user -p$password -e 'SELECT 1'"
probe_amqp="$bin amqp --user guest --password-env AMQP_PASSWORD 127.0.0.1:$amqp_port"
ping="$rabbit_bin/rabbitmq-diagnostics -q -n $node ping"
port_check="$rabbit_bin/rabbitmq-diagnostics -q -n $node check_port_connectivity"

# Each side must give the expected answer before it is timed.
$probe_mysql | grep -q '^healthy: ' || { $probe_mysql; exit 1; }
mysql -h 127.0.0.1 -P "$mysql_port" -u "$user" -p"$password" -e 'SELECT 1' >/dev/null
$probe_amqp | grep -q '^healthy: ' || { $probe_amqp; exit 1; }
$ping >/dev/null
$port_check >/dev/null

runs=${BENCH_RUNS:-100}
slow_runs=${BENCH_SLOW_RUNS:-10}
hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/mysql.json" \
    -n floor "$bin file $work/init.sql 86400" \
    -n healthcheck "$probe_mysql" -n mysql "$client_mysql" >&2
hyperfine -N --warmup 5 --runs "$runs" --export-json "$work/amqp.json" \
    -n healthcheck "$probe_amqp" >&2
hyperfine -N --warmup 1 --runs "$slow_runs" --export-json "$work/diagnostics.json" \
    -n ping "$ping" -n check_port_connectivity "$port_check" >&2

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n1; }
rss_probe_mysql=$(rss $probe_mysql)
rss_client_mysql=$(rss mysql -h 127.0.0.1 -P "$mysql_port" -u "$user" -p"$password" -e 'SELECT 1')
rss_probe_amqp=$(rss $probe_amqp)
rss_ping=$(rss $ping)
rss_port_check=$(rss $port_check)
# The probe's own floor: the cheapest check it has (a file's age).
rss_floor=$(rss "$bin" file "$work/init.sql" 86400)

python3 - "$work" "$rss_probe_mysql" "$rss_client_mysql" "$rss_probe_amqp" "$rss_ping" "$rss_port_check" "$rss_floor" <<'PY'
import json, sys
work = sys.argv[1]
load = lambda name: {r["command"]: r["median"] * 1000 for r in json.load(open(f"{work}/{name}.json"))["results"]}
mysql, amqp, diag = load("mysql"), load("amqp"), load("diagnostics")
kib = [int(v) for v in sys.argv[2:]]
mib = lambda k: f"{k / 1024:.2f} MiB"
print("| check | median wall | peak RSS | vs healthcheck (wall / RSS) |")
print("|---|---|---|---|")
print(f"| healthcheck file (the probe's exec floor) | {mysql['floor']:.2f} ms | {mib(kib[5])} | |")
print(f"| healthcheck mysql (login + SELECT 1) | {mysql['healthcheck']:.2f} ms | {mib(kib[0])} | |")
print(f"| mysql -e 'SELECT 1' (mariadb-client) | {mysql['mysql']:.2f} ms | {mib(kib[1])} | "
      f"{mysql['mysql'] / mysql['healthcheck']:.1f}× / {kib[1] / kib[0]:.1f}× |")
print(f"| healthcheck amqp (to Open-Ok as guest) | {amqp['healthcheck']:.2f} ms | {mib(kib[2])} | |")
print(f"| rabbitmq-diagnostics ping | {diag['ping']:.0f} ms | {mib(kib[3])} | "
      f"{diag['ping'] / amqp['healthcheck']:.0f}× / {kib[3] / kib[2]:.1f}× |")
print(f"| rabbitmq-diagnostics check_port_connectivity | {diag['check_port_connectivity']:.0f} ms | {mib(kib[4])} | "
      f"{diag['check_port_connectivity'] / amqp['healthcheck']:.0f}× / {kib[4] / kib[2]:.1f}× |")
PY
