#!/usr/bin/env bash
# Baseline for the http-API profile benchmark: TripleO's get_url_from_vhost (tripleo-common
# healthcheck/common.sh, final form) followed by healthcheck_curl with its default flags.
# argv: VHOST_FILE
set -euo pipefail
file=$1
test -r "$file" || exit 1
server_name=$(awk '/ServerName/ {print $2}' "$file" | head -n1)
ssl_enabled=$(awk '/SSLEngine/ {print $2}' "$file")
bind_port=$(grep -h "<VirtualHost" "$file" | sed 's/<VirtualHost .*:\(.*\)>/\1/')
wsgi_alias=$(awk '/WSGIScriptAlias / {print $2; exit}' "$file")
proto=http
if [[ $ssl_enabled == "on" ]]; then proto=https; fi
if [[ $wsgi_alias != "/" ]]; then wsgi_alias="${wsgi_alias}/"; fi
export NSS_SDB_USE_CACHE=no
curl -g -k -q -s -S --fail -o /dev/null --max-time 10 --user-agent curl-healthcheck \
    --write-out '\n%{http_code} %{remote_ip}:%{remote_port} %{time_total} seconds\n' \
    "${proto}://${server_name}:${bind_port}${wsgi_alias}"
