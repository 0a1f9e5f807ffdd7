#!/usr/bin/env bash
# The cost of probing on a real node (the local cluster: kubelet v1.36, Debian's containerd 1.6
# and runc): BENCH_PODS pods (default 30) probed every 10 s for BENCH_SECONDS (default 180; the
# issue's 5 minutes: BENCH_SECONDS=300) per phase, one phase after the other in one run:
#   idle     the same pods without probes (what the node spends on them anyway)
#   exec     mode Exec: the kubelet execs `/openstack/healthcheck --timeout 4.5 http URL`
#   sidecar  mode HTTP's pods with no probe: the `healthcheck serve` sidecar runs the check
#            every 10 s, nobody asks it (what the sidecar costs by being there)
#   http     mode HTTP: that sidecar, and the kubelet's httpGet asks its /livez
# The probes are the ones `healthcheck-operator render --to kubernetes` prints for one HealthCheck
# in each mode. CPU seconds come from two cpuacct cgroups, so nothing is counted twice: the
# engine's (the bench moves the kubelet and containerd into it before any pod starts; the shims
# and every runc they run inherit it) and the node's pod cgroup (the probe processes, serve, the
# services, the pause containers). Probes are counted by the kubelet (`prober_probe_total`).
# Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
pods=${BENCH_PODS:-30}
seconds=${BENCH_SECONDS:-180}
PATH="$PATH:/usr/sbin:/sbin" scripts/ensure-packages containerd=containerd runc=runc \
    /usr/lib/cni/bridge=containernetworking-plugins iptables=iptables conntrack=conntrack ip=iproute2
bin=$(tests/controlplane/build.sh | tail -n1)
archive=$(scripts/build-images probe)
image=ghcr.io/openstack-healthcheck/probe:0.1.0
cargo build --quiet -p kube-controlplane --bin dev-cluster -p healthcheck-operator \
    --bin healthcheck-operator
target=$(scripts/cargo-target-dir)/debug

scratch=$(mktemp -d /tmp/ohc-node-bench.XXXXXX)
engine_cgroup=/sys/fs/cgroup/cpuacct/$(basename "$scratch")-engine
kubectl() { KUBECONFIG=$scratch/kubeconfig "$bin/kubectl" "$@"; }
cleanup() {
    if [ -n "${launcher:-}" ]; then
        kill "$launcher" 2>/dev/null && wait "$launcher" 2>/dev/null
    fi
    for _ in $(seq 100); do [ -s "$engine_cgroup/cgroup.procs" ] || break; sleep 0.1; done
    rmdir "$engine_cgroup" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

KUBE_CONTROLPLANE_BIN=$bin "$target/dev-cluster" "$scratch/kubeconfig" 2>"$scratch/log" &
launcher=$!
until [ -f "$scratch/kubeconfig" ]; do
    kill -0 "$launcher" 2>/dev/null || { cat "$scratch/log" >&2; exit 1; }
    sleep 0.2
done
node_cgroup=/sys/fs/cgroup/cpuacct/$(sed -n 's/.*network namespace \(kcp-[0-9-]*\).*/\1/p' "$scratch/log")
node=$(kubectl get nodes -o jsonpath='{.items[0].metadata.name}')
ctr --address "$scratch/containerd.sock" --namespace k8s.io images import "$archive" >/dev/null

mkdir -p "$engine_cgroup"
for pid in $(pgrep -P "$launcher" -x 'kubelet|containerd'); do
    echo "$pid" >"$engine_cgroup/cgroup.procs"
done
[ "$(wc -l <"$engine_cgroup/cgroup.procs")" -ge 2 ] || { echo "kubelet or containerd not found" >&2; exit 1; }

url=http://127.0.0.1:8080/
# The rendered probe for MODE (Exec or HTTP), indented for a container in the pod template.
rendered_probe() {
    cat >"$scratch/healthcheck.yaml" <<YAML
apiVersion: healthcheck.openstack.org/v1beta1
kind: HealthCheck
metadata: { name: bench }
spec:
  selector: { matchLabels: { app: bench } }
  check: { http: { url: "$url" } }
  probes: { liveness: {} }
  timing: { interval: 10s, timeout: 5s }
  mode: $1
YAML
    "$target/healthcheck-operator" render -f "$scratch/healthcheck.yaml" --to kubernetes | sed 's/^/    /'
}
serve_config='{"listen": "0.0.0.0:9180", "liveness": {"check": {"http": {"url": "'$url'"}}, "interval": "10s", "timeout": "5s"}}'
# Pod I of PHASE: busybox's httpd as the service (in the probe image, which has the probe).
pod() {
    local phase=$1 i=$2
    cat <<YAML
---
apiVersion: v1
kind: Pod
metadata: { name: $phase-$i, labels: { bench: $phase } }
spec:
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  volumes: [{ name: www, emptyDir: {} }]
  containers:
  - name: service
    image: $image
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "echo ok >/www/index.html && exec /bin/busybox httpd -f -p 127.0.0.1:8080 -h /www"]
    volumeMounts: [{ name: www, mountPath: /www }]
YAML
    case $phase in
        exec) echo "$exec_probe" ;;
        http|sidecar)
              [ "$phase" = sidecar ] || echo "$http_probe"
              cat <<YAML
  - name: healthcheck
    image: $image
    imagePullPolicy: Never
    args: [serve]
    env: [{ name: HEALTHCHECK_SERVE_CONFIG, value: '$serve_config' }]
YAML
              ;;
    esac
}
exec_probe=$(rendered_probe Exec)
http_probe=$(rendered_probe HTTP)

probes_run() {
    kubectl get --raw "/api/v1/nodes/$node/proxy/metrics/probes" |
        awk '/^prober_probe_total\{/ && /probe_type="Liveness"/ { n += $NF } END { printf "%d\n", n }'
}
failed_probes() {
    kubectl get --raw "/api/v1/nodes/$node/proxy/metrics/probes" |
        awk '/^prober_probe_total\{/ && /probe_type="Liveness"/ && !/result="successful"/ { n += $NF }
             END { printf "%d\n", n }'
}

echo "| phase | engine CPU s (kubelet, containerd, shims, runc) | pods' CPU s (probes, serve, services) | total CPU s | probes | CPU ms per probe | over idle, ms per probe |"
echo "|---|---|---|---|---|---|---|"
for phase in idle exec sidecar http; do
    for i in $(seq "$pods"); do pod "$phase" "$i"; done >"$scratch/$phase.yaml"
    kubectl apply -f "$scratch/$phase.yaml" >/dev/null
    kubectl wait --for=condition=Ready pod -l "bench=$phase" --timeout=300s >/dev/null
    # One period for every pod's first probe, then the window.
    sleep 10
    p0=$(probes_run); e0=$(cat "$engine_cgroup/cpuacct.usage"); n0=$(cat "$node_cgroup/cpuacct.usage")
    sleep "$seconds"
    p1=$(probes_run); e1=$(cat "$engine_cgroup/cpuacct.usage"); n1=$(cat "$node_cgroup/cpuacct.usage")
    restarts=$(kubectl get pods -l "bench=$phase" \
        -o jsonpath='{range .items[*]}{.status.containerStatuses[*].restartCount}{"\n"}{end}' |
        tr ' ' '\n' | awk '{ n += $1 } END { print n + 0 }')
    [ "$restarts" -eq 0 ] || { echo "$restarts restarts in phase $phase" >&2; exit 1; }
    [ "$(failed_probes)" -eq 0 ] || { echo "failed probes in phase $phase" >&2; exit 1; }
    total=$(awk -v e=$((e1 - e0)) -v n=$((n1 - n0)) 'BEGIN { printf "%.3f", (e + n) / 1e9 }')
    [ "$phase" = idle ] && idle_total=$total
    awk -v e=$((e1 - e0)) -v n=$((n1 - n0)) -v p=$((p1 - p0)) -v ph="$phase" -v idle="$idle_total" 'BEGIN {
        es = e / 1e9; ns = n / 1e9; t = es + ns
        per = p > 0 ? sprintf("%.2f", t * 1000 / p) : "-"
        over = p > 0 ? sprintf("%.2f", (t - idle) * 1000 / p) : "-"
        printf "| %s | %.2f | %.2f | %.2f | %d | %s | %s |\n", ph, es, ns, t, p, per, over }' |
        tee -a "$scratch/table"
    kubectl delete pod -l "bench=$phase" --wait=true --timeout=300s >/dev/null
done
echo
# The kubelet's httpGet alone: the http phase over the sidecar phase, the same pods.
awk -F'|' '{ gsub(/ /, "", $2) } $2 == "sidecar" { s = $5 } $2 == "http" { h = $5; p = $6 }
    END { if (p > 0) printf "http over sidecar (the kubelet'"'"'s httpGet and serve answering it): %.2f ms per probe\n", (h - s) * 1000 / p }' "$scratch/table"
# A TripleO-sized controller: 60 services probed every 30 s is 2 probes a second.
awk -F'|' '$2 ~ /exec|http/ { gsub(/ /, "", $2); printf "%s: %.2f %% of one core (%.2f %% over idle) for 60 services at a 30 s interval\n",
    $2, $7 * 2 / 10, $8 * 2 / 10 }' "$scratch/table"
echo "$pods pods, period 10 s, ${seconds} s per phase, node: kubelet v1.36 + containerd 1.6 + runc;" \
    "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
