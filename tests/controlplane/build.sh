#!/usr/bin/env bash
# Builds the local Kubernetes cluster's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, and the node's kubelet and kube-proxy) from the published Go modules
# into a cache outside the work tree, reusing it when present; plus the node's sandbox (pause)
# binary from pause/, rebuilt whenever its source changes.
# Progress goes to stderr; the last line on stdout is the directory that holds the binaries.
#
# Environment:
#   K8S_VERSION, ETCD_VERSION   versions to build (defaults below)
#   KUBE_CONTROLPLANE_CACHE     cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/openstack-healthcheck/controlplane)
set -euo pipefail

# 1.36 is inside k8s-openapi 0.29's supported range; etcd matches what this Kubernetes release pins.
K8S_VERSION=${K8S_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.8}
cache_root=${KUBE_CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/openstack-healthcheck/controlplane}
dir=$cache_root/$K8S_VERSION-etcd-$ETCD_VERSION
bin=$dir/bin
binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)

log() { printf 'controlplane: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

all_cached() {
  local b
  for b in "${binaries[@]}"; do [[ -x $bin/$b ]] || return 1; done
}

# The pause binary is tiny and the project's own source: keyed by its content, built in a second.
pause_src=$(cd "$(dirname "$0")/pause" && pwd)
ensure_pause() {
  local hash out
  hash=$(cat "$pause_src"/go.mod "$pause_src"/*.go | sha256sum | cut -c1-16)
  out=$cache_root/pause-$hash/pause
  if [[ ! -x $out ]]; then
    log "building the sandbox (pause) binary from $pause_src"
    mkdir -p "${out%/*}"
    (cd "$pause_src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod \
      go build -trimpath -ldflags '-s -w' -o "$out.partial" .) || die "go build of pause failed"
    mv "$out.partial" "$out"
  fi
  cmp -s "$out" "$bin/pause" || install -m 0755 "$out" "$bin/pause"
}

# The official Go install location, for shells whose PATH lacks it.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then PATH=$PATH:/usr/local/go/bin; fi
command -v go >/dev/null || die "Go is required to build the control plane (https://go.dev/doc/install); none found on PATH"
mkdir -p "$dir"
# Serialise concurrent builds (e.g. scripts/test and scripts/dev-cluster started together).
exec 9>"$dir/.lock"
if all_cached && flock -n 9; then
  ensure_pause
  log "cached ${binaries[*]} pause ($K8S_VERSION, etcd $ETCD_VERSION) in $bin"
  echo "$bin"
  exit 0
fi
flock 9
if all_cached; then
  ensure_pause
  log "cached ${binaries[*]} in $bin (built by a concurrent run)"
  echo "$bin"
  exit 0
fi

# A throwaway wrapper module: k8s.io/kubernetes maps its staging modules to ./staging via replace
# directives, which Go ignores in dependencies, so the wrapper repeats them with published versions.
src=$dir/src
rm -rf "$src" "$dir/bin.partial"
mkdir -p "$src" "$dir/bin.partial"
cd "$src"
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local

log "resolving k8s.io/kubernetes@$K8S_VERSION from the Go module proxy"
dl=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION") || die "cannot download k8s.io/kubernetes@$K8S_VERSION"
gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p' <<<"$dl")
info=$(sed -n 's/^[[:space:]]*"Info": "\(.*\)",$/\1/p' <<<"$dl")
[[ -f $gomod ]] || die "no go.mod for k8s.io/kubernetes@$K8S_VERSION"
go_line=$(grep -m1 '^go ' "$gomod")
godebug_line=$(grep -m1 '^godebug ' "$gomod" || true)
staging=$(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/k8s.io/.*#\1#p' "$gomod")
[[ -n $staging ]] || die "no staging replace lines in k8s.io/kubernetes@$K8S_VERSION go.mod"
staging_version=v0.${K8S_VERSION#v1.}
{
  echo "module local/kube-controlplane"
  echo
  echo "$go_line"
  echo "$godebug_line"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $K8S_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo ")"
  echo
  echo "replace ("
  for m in $staging; do echo "	$m => $m $staging_version"; done
  echo ")"
} >go.mod
log "wrapper module: $(wc -l <<<"$staging") staging modules replaced at $staging_version"

# Same version stamps as hack/lib/version.sh, so /version reports the real release; the build date is
# the release's tag time, which keeps the link step cacheable.
build_date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info")
minor=${K8S_VERSION#v1.}
minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$build_date"
done

build() {
  local name=$1 pkg=$2 start
  start=$(date +%s)
  log "building $name from $pkg (first build takes minutes; the Go build cache makes rebuilds fast)"
  nice -n 10 go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ldflags" \
    -o "$dir/bin.partial/$name" "$pkg" || die "go build of $name failed (see above)"
  log "built $name in $(($(date +%s) - start))s, $(du -m "$dir/bin.partial/$name" | cut -f1) MiB"
}

build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
build kube-scheduler k8s.io/kubernetes/cmd/kube-scheduler
build kubectl k8s.io/kubernetes/cmd/kubectl
build kubelet k8s.io/kubernetes/cmd/kubelet
build kube-proxy k8s.io/kubernetes/cmd/kube-proxy

rm -rf "$bin"
mv "$dir/bin.partial" "$bin"
ensure_pause
log "control plane binaries ready in $bin"
echo "$bin"
