#!/usr/bin/env bash
# Baseline for the redis profile benchmark: TripleO's redis script, bind/port/requirepass
# from redis.conf with grep+awk, RESP AUTH and PING through socat, +PONG expected.
# argv: REDIS_CONF
set -euo pipefail
conf=$1
bind_host=$(grep -e "^bind" "$conf" | awk '{print $2}' || true)
bind_port=$(grep -e "^port" "$conf" | awk '{print $2}' || true)
bind_pass=$(grep -e "^requirepass" "$conf" | awk '{print $2}' || true)
if [[ $bind_host =~ : ]]; then bind_host="[$bind_host]"; fi
if [ -n "$bind_pass" ]; then
    request=$(printf 'AUTH %s\r\nPING\r\n' "$bind_pass")
else
    request=$(printf 'PING\r\n')
fi
response=$(printf '%s\r\n' "$request" | socat - "TCP:${bind_host:-127.0.0.1}:${bind_port:-6379}")
if echo "$response" | grep -q '^+PONG'; then
    echo "Redis server responded correctly on ${bind_host}:${bind_port}."
else
    echo "Redis server does not respond correctly: ${response}"
    exit 1
fi
