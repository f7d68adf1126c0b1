#!/usr/bin/env bash
# Builds a real `etcd` and `kube-apiserver` for the integration tests (see
# tests/src/k8s.rs) from Go modules fetched through the Go module proxy.
#
# Output: $KO_K8S_CACHE/<k8s version>/bin/{etcd,kube-apiserver}
# (KO_K8S_CACHE defaults to ~/.cache/ko-tests/k8s, outside the repository).
# Nothing is built when both binaries are already there. The build cache
# (GOCACHE, ~2 GB) lives beside them, so an interrupted build resumes quickly;
# the modules (~540 MB) go to the usual GOMODCACHE. Cold: about 5 minutes on
# 2 cores; binaries: etcd 25 MB, kube-apiserver 91 MB (byte-reproducible).
#
# kube-apiserver: a throwaway module requires k8s.io/kubernetes and replaces
# every k8s.io/<staging> module (which k8s.io/kubernetes' own go.mod points
# at ./staging/...) with its published v0.N.x release. etcd: the
# go.etcd.io/etcd/server/v3 main package, at the version Kubernetes pins.
#
# Prints the bin directory as the last line of stdout.
set -euo pipefail

K8S_VERSION=v1.32.13    # matches the minor version of the kubectl the tests use
STAGING_VERSION=v0.32.13
ETCD_VERSION=v3.5.16    # what k8s.io/kubernetes v1.32.13 requires

# The modules that k8s.io/kubernetes requires at v0.0.0 and replaces with
# ./staging/src/k8s.io/<name>. One of them, sample-apiserver, is not served at
# STAGING_VERSION; nothing of it is built, so any release serves for its go.mod.
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission)
declare -A STAGING_OVERRIDE=([sample-apiserver]=v0.32.3)

cache="${KO_K8S_CACHE:-$HOME/.cache/ko-tests/k8s}"
mkdir -p "$cache"
cache="$(cd "$cache" && pwd)"  # absolute: callers use the printed path from anywhere
dir="$cache/$K8S_VERSION"
bin="$dir/bin"

if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
  echo "k8s test binaries already built in $bin" >&2
  echo "$bin"
  exit 0
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 || { echo "build.sh: go is not on PATH" >&2; exit 1; }

# One build at a time per cache (parallel test processes may all call this).
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"
  exit 0
fi

src="$dir/src"
rm -rf "$bin.tmp"
mkdir -p "$src" "$bin.tmp"
{
  echo "module ko-tests/k8s-binaries"
  echo
  echo "go 1.23.0"
  echo
  echo "require ("
  echo "	k8s.io/kubernetes $K8S_VERSION"
  echo "	go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  echo ")"
  echo
  echo "replace ("
  for m in "${STAGING[@]}"; do
    echo "	k8s.io/$m => k8s.io/$m $STAGING_VERSION"
  done
  for m in "${!STAGING_OVERRIDE[@]}"; do
    echo "	k8s.io/$m => k8s.io/$m ${STAGING_OVERRIDE[$m]}"
  done
  echo ")"
} >"$src/go.mod"
# A stub so the directory is a buildable module.
printf 'package k8sbinaries\n' >"$src/doc.go"

export GOCACHE="$dir/gocache"
export GOFLAGS="-mod=mod -buildvcs=false ${KO_K8S_GOFLAGS:--p=2}"
export CGO_ENABLED=0
export GOTOOLCHAIN=local
# Same build-time metadata as upstream's release builds, so `--version` and
# the /version endpoint report the real version.
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"

start=$(date +%s)
echo "building etcd $ETCD_VERSION and kube-apiserver $K8S_VERSION into $bin (GOFLAGS=$GOFLAGS) ..." >&2
cd "$src"
nice -n 10 go build -trimpath -ldflags="$ldflags" -o "$bin.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver go.etcd.io/etcd/server/v3
mv "$bin.tmp/server" "$bin.tmp/etcd"  # go names a .../server/v3 main package "server"
rm -rf "$bin"
mv "$bin.tmp" "$bin"
echo "built in $(($(date +%s) - start))s: $(du -sh "$bin"/etcd "$bin"/kube-apiserver | tr '\n' ' ')" >&2
echo "$bin"
