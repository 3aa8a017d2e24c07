#!/usr/bin/env bash
# Builds kube-apiserver from k8s.io/kubernetes (pinned in
# tools/kube-apiserver/go.mod) into .cache/bin/ of the repository, for the
# deploy checks that admit the overlays with a real API server.
#
# The build (several minutes on a cold cache) is skipped while the binary
# matches tools/kube-apiserver/go.mod, go.sum, this script and the Go
# version; delete .cache/bin/kube-apiserver to force it.
#
# Usage: scripts/build-kube-apiserver.sh   (from any directory)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mod="$root/tools/kube-apiserver"
bin="$root/.cache/bin/kube-apiserver"
stamp="$bin.stamp"

want="$({ cat "$mod/go.mod" "$mod/go.sum" "${BASH_SOURCE[0]}"; go version; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$bin" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi

echo "building kube-apiserver into .cache/bin/ (a few minutes on a cold cache) ..." >&2
mkdir -p "$(dirname "$bin")"
rm -f "$stamp"
start=$SECONDS
# Stamp the release the module is, as Kubernetes' own build does.
version="$(cd "$mod" && GOWORK=off go list -m -f '{{.Version}}' k8s.io/kubernetes)"
minor="$(echo "$version" | cut -d. -f2)"
ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
(cd "$mod" && GOWORK=off go build -trimpath -ldflags "$ldflags" -o "$bin" k8s.io/kubernetes/cmd/kube-apiserver)
echo "$want" >"$stamp"
echo "kube-apiserver built in $((SECONDS - start)) s" >&2
