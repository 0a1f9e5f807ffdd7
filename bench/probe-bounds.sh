#!/usr/bin/env bash
# Memory bounds of exec mode under hostile input, each run in a 32 MiB memory cgroup (v1; root):
# a MySQL server answering with 16 MiB rows, a config file that is a symlink to /dev/zero, a
# 100 MB config file, a `(a|b)` x 20,000 pattern and the largest pattern allowed. Prints a
# Markdown table: exit code, the line, the cgroup's peak memory, and whether it was OOM-killed.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-packages python3=python3

. bench/common.sh
cg=/sys/fs/cgroup/memory/healthcheck-bounds-$$
mkdir "$cg" || { echo "(no writable cgroup v1 memory controller: skipped)"; exit 0; }
trap 'cleanup; rmdir "$cg" 2>/dev/null || true' EXIT
limit=$((32 * 1024 * 1024))

python3 bench/hostile_mysql.py >"$work/mysql.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/mysql.port" ] && break; sleep 0.1; done
mkdir -p "$work/zero/etc" "$work/big/etc"
ln -s /dev/zero "$work/zero/etc/memcached.conf"
head -c 100000000 /dev/zero | tr '\0' '#' >"$work/big/etc/memcached.conf"

# Runs the probe in a fresh cgroup with the environment in $1 and the arguments after it.
bounded() {
    local env=$1; shift
    echo 0 >"$cg/memory.max_usage_in_bytes" 2>/dev/null || true
    echo "$limit" >"$cg/memory.limit_in_bytes"
    set +e
    line=$(sh -c "echo \$\$ > $cg/cgroup.procs; exec env -i PATH=/usr/bin:/bin $env \"\$0\" \"\$@\"" "$bin" "$@" 2>/dev/null)
    code=$?
    set -e
    peak=$(($(cat "$cg/memory.max_usage_in_bytes") / 1024))
    printf '| `%s` | %s | %s | %s KiB |\n' "$label" "$code" "$(echo "${line:0:110}" | sed 's/|/\\|/g')" "$peak"
}

echo "## Exec mode memory bounds (32 MiB cgroup)"
echo
echo '`bench/probe-bounds.sh`'
echo
echo "| input | exit | line | peak memory |"
echo "|---|---|---|---|"
label="mysql: 16 MiB rows"; bounded "" --timeout 10 mysql -u m "127.0.0.1:$(cat "$work/mysql.port")"
label="memcached.conf -> /dev/zero"; bounded "HEALTHCHECK_CONFIG_ROOT=$work/zero" profile memcached
label="memcached.conf of 100 MB"; bounded "HEALTHCHECK_CONFIG_ROOT=$work/big" profile memcached
label="process (a|b)x20000"; bounded "" process "$(python3 -c 'print("(a|b)" * 20000)')"
label="process (a|b)x204 (1,020 bytes)"; bounded "" process "$(python3 -c 'print("(a|b)" * 204)')"
echo
echo "OOM kills in the cgroup: $(awk '/oom_kill /{print $2}' "$cg/memory.oom_control" 2>/dev/null || echo 0)"
