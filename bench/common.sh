# shellcheck shell=bash
# Set-up shared by the benchmark scripts (sourced from the repository root): the static probe
# binary, a work directory, background processes killed at exit, and free loopback ports.
# shellcheck disable=SC2034 # `bin` is for the scripts that source this file
bin=$(scripts/build-probe)
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
