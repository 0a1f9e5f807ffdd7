#!/usr/bin/env bash
# Baseline for the INI-configured API benchmark: TripleO's glance-api script, get_config_val
# (crudini) for bind_host and bind_port, wrap_ipv6, then healthcheck_curl. argv: CONF_FILE
set -euo pipefail
conf=$1
get_config_val() { crudini --get "$1" "$2" "$3" 2>/dev/null || echo "$4"; }
wrap_ipv6() { if [[ $1 =~ : && ! $1 =~ \]$ ]]; then echo "[$1]"; else echo "$1"; fi; }
bind_host=$(wrap_ipv6 "$(get_config_val "$conf" DEFAULT bind_host 127.0.0.1)")
bind_port=$(get_config_val "$conf" DEFAULT bind_port 9292)
export NSS_SDB_USE_CACHE=no
curl -g -k -q -s -S --fail -o /dev/null --max-time 10 --user-agent curl-healthcheck \
    --write-out '\n%{http_code} %{remote_ip}:%{remote_port} %{time_total} seconds\n' \
    "http://${bind_host}:${bind_port}/"
