#!/usr/bin/env bash
# Engine-side cost of health checks: 20 service containers under a private dockerd, health
# interval 10 s, for BENCH_SECONDS (default 120; the issue's 5 minutes: BENCH_SECONDS=300), with
#   (a) TripleO's shell check: CMD-SHELL running bash + curl (healthcheck_curl) in a Debian image
#   (b) our exec binary: HEALTHCHECK CMD ["/openstack/healthcheck", "http", URL]
#   (c) `healthcheck serve` in each container running the same http check every 10 s, and the
#       HEALTHCHECK CMD ["/openstack/healthcheck", "status"] asking it
# CPU seconds of dockerd + containerd + shims (with the runc processes they reap) and of the
# containers' cgroups (the check processes, and serve in (c)). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-120}
count=${BENCH_CONTAINERS:-20}
PATH="$PATH:/usr/sbin:/sbin" scripts/ensure-packages dockerd=docker.io runc=runc
archive=$(scripts/build-images bench-service)
image=localhost/openstack-healthcheck/bench-service:0.1.0
ticks=$(getconf CLK_TCK)

dir=$(mktemp -d /tmp/ohc-bench.XXXXXX)
cgroup=$(basename "$dir")
docker() { DOCKER_CONFIG=$dir/client DOCKER_BUILDKIT=0 /usr/bin/docker --host "unix://$dir/docker.sock" "$@"; }
# dockerd, its containerd and the shims: the engine processes started with this directory.
under_dir() {
    local file pid
    for file in $(grep -lsF "$dir" /proc/[0-9]*/cmdline); do
        pid=$(echo "$file" | cut -d/ -f3)
        case $(cat "/proc/$pid/comm" 2>/dev/null) in
            dockerd | containerd | containerd-shim*) echo "$pid" ;;
        esac
    done
}
# Through the docker function, so the private daemon's containers are the ones removed.
remove_containers() {
    local ids
    mapfile -t ids < <(docker ps -aq)
    [ ${#ids[@]} -eq 0 ] || docker rm -f "${ids[@]}" >/dev/null
}
cleanup() {
    remove_containers 2>/dev/null || true
    [ -n "${dockerd_pid:-}" ] && kill "$dockerd_pid" 2>/dev/null && wait "$dockerd_pid" 2>/dev/null
    for pid in $(under_dir); do kill -9 "$pid" 2>/dev/null || true; done
    awk -v d="$dir" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r | xargs -r umount -l
    for controller in /sys/fs/cgroup/*/; do
        [ -d "$controller$cgroup" ] && find "$controller$cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    rm -rf "$dir"
}
trap cleanup EXIT

mkdir -p "$dir/client"
echo '{}' >"$dir/daemon.json"
/usr/sbin/dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$dir/data" \
    --exec-root "$dir/exec" --host "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
    --config-file "$dir/daemon.json" --cgroup-parent "/$cgroup" --log-level=warn \
    --default-ulimit nofile=20000:20000 --default-ulimit nproc=32768:32768 \
    >"$dir/dockerd.log" 2>&1 &
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
# utime + stime + cutime + cstime of dockerd, containerd and the shims, in ticks.
engine_ticks() {
    local total=0 pid
    for pid in $(under_dir); do
        total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
containers_ns() { cat "/sys/fs/cgroup/cpuacct/$cgroup/cpuacct.usage" 2>/dev/null || echo 0; }

echo "| variant | engine CPU s (dockerd, containerd, shims, runc) | containers' CPU s (checks; serve in c) | total CPU s | health runs | CPU ms per run |"
echo "|---|---|---|---|---|---|"
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
    [ "$healthy" -ge "$count" ] || { echo "only $healthy of $count containers healthy ($variant)" >&2; exit 1; }
    e0=$(engine_ticks); c0=$(containers_ns)
    sleep "$seconds"
    e1=$(engine_ticks); c1=$(containers_ns)
    unhealthy=$(docker ps --filter health=unhealthy -q | wc -l)
    [ "$unhealthy" -eq 0 ] || { echo "$unhealthy containers unhealthy ($variant)" >&2; exit 1; }
    runs=$((count * seconds / 10))
    awk -v e=$((e1 - e0)) -v c=$((c1 - c0)) -v t="$ticks" -v r="$runs" -v v="$variant" 'BEGIN {
        es = e / t; cs = c / 1e9; names["a"] = "(a) TripleO bash + curl"
        names["b"] = "(b) exec binary"; names["c"] = "(c) serve + status"
        printf "| %s | %.2f | %.2f | %.2f | ~%d | %.1f |\n", names[v], es, cs, es + cs, r, (es + cs) * 1000 / r }'
    remove_containers
done
echo
echo "$count containers, health interval 10 s, ${seconds} s per variant; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
