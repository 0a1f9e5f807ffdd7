#!/usr/bin/env bash
# Measures the local control plane: build times and sizes, cached runs, and start-to-ready.
#
#   tests/controlplane/bench.sh          cached build-script run, warm rebuild, start-to-ready (3 runs),
#                                        and with the node: start-to-Ready, pod create-to-Running,
#                                        teardown (3 runs)
#   tests/controlplane/bench.sh --cold   also a cold build with empty Go module and build caches
#                                        (temporary ones: the real caches are left alone; ~10 min)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=tests/controlplane/build.sh
scratch=$(mktemp -d)
trap 'chmod -R u+w "$scratch" 2>/dev/null; rm -rf "$scratch"' EXIT

seconds() { local start=$1; echo "$(( $(date +%s%N) / 1000000 - start ))" | awk '{printf "%.1f", $1 / 1000}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

if [[ ${1:-} == --cold ]]; then
  echo "== cold build (empty module cache, empty build cache)"
  start=$(now_ms)
  GOMODCACHE=$scratch/gomod GOCACHE=$scratch/gocache KUBE_CONTROLPLANE_CACHE=$scratch/cold \
    $build 2>&1 >/dev/null | grep -v '^go: downloading'
  echo "cold build total: $(seconds "$start")s"
  ls -l "$scratch"/cold/*/bin | awk 'NR > 1 {printf "%-26s %4d MiB\n", $9, $5 / 1048576}'
fi

echo "== build script with cached binaries"
bin=$($build 2>/dev/null)
start=$(now_ms)
$build >/dev/null 2>&1
echo "cached run: $(seconds "$start")s"

echo "== rebuild with warm Go caches (e.g. the binary cache was deleted)"
start=$(now_ms)
KUBE_CONTROLPLANE_CACHE=$scratch/warm $build 2>&1 >/dev/null | grep -v '^go: downloading'
echo "warm rebuild total: $(seconds "$start")s"

echo "== start-to-ready (3 runs)"
cargo build --quiet --release -p kube-controlplane --bin dev-cluster
target=$(scripts/cargo-target-dir)
# Starts the launcher with the given options and waits for its kubeconfig; sets pid.
start_cluster() {
  rm -f "$scratch/kubeconfig"
  KUBE_CONTROLPLANE_BIN=$bin "$target/release/dev-cluster" "$@" "$scratch/kubeconfig" 2>"$scratch/log" &
  pid=$!
  until [[ -f $scratch/kubeconfig ]]; do
    kill -0 "$pid" 2>/dev/null || { cat "$scratch/log"; exit 1; }
    sleep 0.1
  done
}
for run in 1 2 3; do
  start_cluster --no-node
  echo "run $run: $(grep 'ready:' "$scratch/log" | sed 's/ (binaries.*//; s/dev-cluster: //')"
  kill "$pid"
  wait "$pid" || true
done

echo "== with the node: start-to-ready, pod create-to-Running, teardown (3 runs)"
for run in 1 2 3; do
  start_cluster
  echo "run $run: $(grep 'ready:' "$scratch/log" | sed 's/ (network.*//; s/dev-cluster: //')"
  start=$(now_ms)
  KUBECONFIG=$scratch/kubeconfig "$bin/kubectl" run bench --image=localhost/kube-controlplane/pause:1 \
    --image-pull-policy=Never --restart=Never >/dev/null
  KUBECONFIG=$scratch/kubeconfig "$bin/kubectl" wait --for=jsonpath='{.status.phase}'=Running \
    pod/bench --timeout=60s >/dev/null
  echo "run $run: pod create-to-Running $(seconds "$start")s (kubectl run + kubectl wait)"
  start=$(now_ms)
  kill "$pid"
  wait "$pid" || true
  echo "run $run: teardown $(seconds "$start")s ($(grep 'stopped in' "$scratch/log" | sed 's/dev-cluster: //'))"
done
