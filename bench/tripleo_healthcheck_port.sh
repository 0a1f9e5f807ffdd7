#!/usr/bin/env bash
# Baseline for the port-check benchmark: TripleO's final healthcheck_port algorithm
# (tripleo-common healthcheck/common.sh, 2021): awk over /proc/net/{tcp,udp,tcp6,udp6}
# collecting inodes on the ports, then `find /proc/PID/fd` per pgrep match, grep -c on the inodes.
# The join.awk library call is written out inline; the logic is otherwise unchanged.
set -euo pipefail
process=$1
shift 1
ports=""
for p in "$@"; do
    ports="${ports}|$(printf '%0.4x' "$p")"
done
ports=":(${ports:1})"
sockets=$(awk -v m="$ports" 'BEGIN{IGNORECASE=1} $2 ~ m || $3 ~ m {printf "%s%s", sep, $10; sep="|"}' \
    /proc/net/tcp /proc/net/udp /proc/net/tcp6 /proc/net/udp6)
if [ -z "$sockets" ]; then
    exit 1
fi
for pid in $(pgrep -f "$process"); do
    matches=$(find /proc/$pid/fd/ -ilname "socket*" -printf "%l\n" 2>/dev/null | grep -c -E "($sockets)" || true)
    if [ "$matches" -ne 0 ]; then
        exit 0
    fi
done
exit 1
