#!/bin/bash
# Baseline for the engines benchmark: TripleO's /openstack/healthcheck for an HTTP API as it
# runs in a service image, bash plus common.sh's healthcheck_curl (curl). argv: URL
set -euo pipefail
healthcheck_curl() {
    if [ $# == 0 ]; then
        echo "healthcheck_curl: no parameter provided"
        return 1
    fi
    export NSS_SDB_USE_CACHE=no
    curl -g -k -q -s -S --fail -o /dev/null --max-time "${HEALTHCHECK_CURL_MAX_TIME:-10}" \
        --user-agent "${HEALTHCHECK_CURL_USER_AGENT:-curl-healthcheck}" \
        --write-out '\n%{http_code} %{remote_ip}:%{remote_port} %{time_total} seconds\n' \
        "$@" || return 1
}
healthcheck_curl "$1"
