#!/usr/bin/env bash
# Engine-side cost of health checks: 20 service containers under a private dockerd, health
# interval 10 s, for BENCH_SECONDS (default 120; the issue's 5 minutes: BENCH_SECONDS=300), with
#   (a) TripleO's shell check: CMD-SHELL running bash + curl (healthcheck_curl) in a Debian image
#   (b) our exec binary: HEALTHCHECK CMD ["/openstack/healthcheck", "http", URL]
#   (c) `healthcheck serve` in each container running the same http check every 10 s, and the
#       HEALTHCHECK CMD ["/openstack/healthcheck", "status"] asking it
# CPU seconds from two cpuacct cgroups, so nothing is counted twice: the engine's (dockerd is
# started in it; containerd, the shims and every runc they run inherit it) and the containers'
# (--cgroup-parent: the check processes docker execs, and serve in (c)). Health runs are counted
# from the containers' health logs, polled every 40 s (the log keeps 5 runs). Prints a Markdown
# table.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-120}
count=${BENCH_CONTAINERS:-20}
PATH="$PATH:/usr/sbin:/sbin" scripts/ensure-packages dockerd=docker.io runc=runc
archive=$(scripts/build-images bench-service)
image=localhost/openstack-healthcheck/bench-service:0.1.0

dir=$(mktemp -d /tmp/ohc-bench.XXXXXX)
cgroup=$(basename "$dir")
engine_cgroup=/sys/fs/cgroup/cpuacct/$cgroup-engine
docker() { DOCKER_CONFIG=$dir/client DOCKER_BUILDKIT=0 /usr/bin/docker --host "unix://$dir/docker.sock" "$@"; }
# Through the docker function, so the private daemon's containers are the ones removed.
remove_containers() {
    local ids
    mapfile -t ids < <(docker ps -aq)
    [ ${#ids[@]} -eq 0 ] || docker rm -f "${ids[@]}" >/dev/null
}
cleanup() {
    remove_containers 2>/dev/null || true
    [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
    # What is left of the engine (containerd, shims) is in its cgroup.
    xargs -r kill -9 <"$engine_cgroup/cgroup.procs" 2>/dev/null || true
    for _ in $(seq 50); do [ -s "$engine_cgroup/cgroup.procs" ] || break; sleep 0.1; done
    awk -v d="$dir" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r umount -l
    for controller in /sys/fs/cgroup/*/; do
        [ -d "$controller$cgroup" ] && find "$controller$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rmdir "$engine_cgroup" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/client" "$engine_cgroup"
echo '{}' >"$dir/daemon.json"
# dockerd enters the engine cgroup before it starts; its children inherit it.
(echo "$BASHPID" >"$engine_cgroup/cgroup.procs" && exec /usr/sbin/dockerd --iptables=false \
    --ip6tables=false --bridge=none --data-root "$dir/data" --exec-root "$dir/exec" \
    --host "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
    --config-file "$dir/daemon.json" --cgroup-parent "/$cgroup" --log-level=warn \
    --default-ulimit nofile=20000:20000 --default-ulimit nproc=32768:32768 \
    >"$dir/dockerd.log" 2>&1) &
dockerd_pid=$!
for _ in $(seq 300); do docker version >/dev/null 2>&1 && break; sleep 0.2; done
docker load -q -i "$archive" >/dev/null

url=http://127.0.0.1:8080/
serve_config='{"readiness": {"check": {"http": {"url": "'$url'"}}, "interval": "10s"}}'
variant_dockerfile() {
    case $1 in
        a) echo "HEALTHCHECK --interval=10s --timeout=10s CMD /usr/local/bin/healthcheck_curl $url" ;;
        b) echo "HEALTHCHECK --interval=10s --timeout=10s CMD [\"/openstack/healthcheck\", \"--timeout\", \"9\", \"http\", \"$url\"]"
           ;;
        c) echo "ENV HEALTHCHECK_SERVE_CONFIG='$serve_config'"
           echo "HEALTHCHECK --interval=10s --timeout=10s CMD [\"/openstack/healthcheck\", \"--timeout\", \"9\", \"status\"]"
           echo 'CMD ["/bin/sh", "-c", "/usr/local/bin/busybox httpd -p 127.0.0.1:8080 -h /srv && exec /openstack/healthcheck serve --listen 127.0.0.1:9180"]'
           ;;
    esac
}
engine_ns() { cat "$engine_cgroup/cpuacct.usage"; }
containers_ns() { cat "/sys/fs/cgroup/cpuacct/$cgroup/cpuacct.usage" 2>/dev/null || echo 0; }
# Appends every logged run (container id and start time) to $1.
log_runs() {
    mapfile -t ids < <(docker ps -q)
    docker inspect --format '{{$id := .Id}}{{range .State.Health.Log}}{{$id}} {{.Start}}{{"\n"}}{{end}}' \
        "${ids[@]}" | grep . >>"$1"
}

echo "| variant | engine CPU s (dockerd, containerd, shims, runc) | containers' CPU s (checks; serve in c) | total CPU s | health runs | CPU ms per run | engine's share |"
echo "|---|---|---|---|---|---|---|"
for variant in a b c; do
    ctx=$dir/ctx-$variant
    mkdir -p "$ctx"
    { echo "FROM $image"; variant_dockerfile "$variant"; } >"$ctx/Dockerfile"
    docker build -q -t "bench-$variant" "$ctx" >/dev/null
    for i in $(seq "$count"); do
        docker run -d --name "bench-$variant-$i" --network none "bench-$variant" >/dev/null
    done
    # Let every container start and reach healthy before measuring.
    for _ in $(seq 60); do
        healthy=$(docker ps --filter health=healthy -q | wc -l)
        [ "$healthy" -ge "$count" ] && break
        sleep 1
    done
    if [ "$healthy" -lt "$count" ]; then
        echo "only $healthy of $count containers healthy ($variant):" >&2
        docker ps -a --format '{{.Names}} {{.Status}}' | head -3 >&2
        docker inspect --format '{{json .State.Health}}' "bench-$variant-1" >&2
        exit 1
    fi
    runs=$dir/runs-$variant
    log_runs "$runs.before"
    e0=$(engine_ns); c0=$(containers_ns)
    for ((left = seconds; left > 0; left -= 40)); do
        sleep $((left < 40 ? left : 40))
        log_runs "$runs"
    done
    e1=$(engine_ns); c1=$(containers_ns)
    unhealthy=$(docker ps --filter health=unhealthy -q | wc -l)
    [ "$unhealthy" -eq 0 ] || { echo "$unhealthy containers unhealthy ($variant)" >&2; exit 1; }
    # Runs logged in the window: seen by the polls, and not already in the log at its start.
    count_runs=$(sort -u "$runs" | comm -23 - <(sort -u "$runs.before") | wc -l)
    awk -v e=$((e1 - e0)) -v c=$((c1 - c0)) -v r="$count_runs" -v v="$variant" 'BEGIN {
        es = e / 1e9; cs = c / 1e9; names["a"] = "(a) TripleO bash + curl"
        names["b"] = "(b) exec binary"; names["c"] = "(c) serve + status"
        printf "| %s | %.2f | %.2f | %.2f | %d | %.1f | %.0f %% |\n", names[v], es, cs, es + cs, r,
            (es + cs) * 1000 / r, 100 * es / (es + cs) }'
    remove_containers
done
echo
echo "$count containers, health interval 10 s, ${seconds} s per variant; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
