#!/usr/bin/env bash
# Builds what a one-node Kubernetes cluster of the project's runs besides
# kube-apiserver (scripts/build-kube-apiserver.sh) into .cache/bin/ of the
# repository: kube-controller-manager, kube-scheduler, kubelet and
# kube-proxy from k8s.io/kubernetes (pinned in tools/kube-apiserver/go.mod,
# the same version), and containerd 2, its runc shim, ctr and CoreDNS from
# their Go modules (pinned in tools/kube-node/go.mod). runc and the CNI plugins are Debian's
# (scripts/install-deps.sh).
#
# Skipped while the binaries match both go.mod and go.sum files, this
# script and the Go version; delete .cache/bin/kube-node.stamp to force it.
#
# Usage: scripts/build-kube-node.sh   (from any directory)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kube="$root/tools/kube-apiserver"
node="$root/tools/kube-node"
bin="$root/.cache/bin"
stamp="$bin/kube-node.stamp"

want="$({ cat "$kube/go.mod" "$kube/go.sum" "$node/go.mod" "$node/go.sum" "${BASH_SOURCE[0]}"; go version; } | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "building kubelet, kube-controller-manager, kube-scheduler, kube-proxy, containerd and CoreDNS into .cache/bin/ ..." >&2
mkdir -p "$bin"
rm -f "$stamp"
start=$SECONDS
# Stamp the release the module is, as Kubernetes' own build does: a kubelet
# of version v0.0.0 is not one the API server's skew rules know.
version="$(cd "$kube" && GOWORK=off go list -m -f '{{.Version}}' k8s.io/kubernetes)"
minor="$(echo "$version" | cut -d. -f2)"
ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
(cd "$kube" && GOWORK=off go build -trimpath -ldflags "$ldflags" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy)
# containerd without the snapshotters that need C libraries (btrfs,
# devmapper, zfs): pods use overlayfs.
(cd "$node" && GOWORK=off CGO_ENABLED=0 go build -trimpath -tags no_btrfs,no_devmapper,no_zfs -o "$bin/" \
  github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
  github.com/containerd/containerd/v2/cmd/ctr github.com/coredns/coredns)
echo "$want" >"$stamp"
echo "kube node binaries built in $((SECONDS - start)) s" >&2
