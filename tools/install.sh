#!/usr/bin/env bash
# Builds the tools pinned in tools/go.mod (buf and the protoc plugins for code
# generation, staticcheck and errcheck for make check) into .cache/bin/ of the
# repository. The tools module is deliberately not part of go.work (buf needs
# newer dependencies than the services), so it is always built with GOWORK=off.
#
# The build is skipped while .cache/bin/ matches tools/go.mod, tools/go.sum and
# the Go version; delete .cache/bin/ to force a rebuild.
#
# Usage: tools/install.sh   (from any directory)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.cache/bin"
stamp="$bin/.tools.stamp"
tools=(buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2 staticcheck errcheck)

want="$({ cat "$root/tools/go.mod" "$root/tools/go.sum"; go version; } | sha256sum | cut -d' ' -f1)"

up_to_date() {
  [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] || return 1
  local t
  for t in "${tools[@]}"; do
    [[ -x "$bin/$t" ]] || return 1
  done
}

if up_to_date; then
  exit 0
fi

echo "building code-generation tools into .cache/bin/ ..." >&2
mkdir -p "$bin"
rm -f "$stamp"
# "tool" is the meta-pattern for every tool directive in tools/go.mod.
(cd "$root/tools" && GOWORK=off go build -trimpath -o "$bin/" tool)
for t in "${tools[@]}"; do
  if [[ ! -x "$bin/$t" ]]; then
    echo "error: $t was not built; is it a tool directive in tools/go.mod?" >&2
    exit 1
  fi
done
echo "$want" >"$stamp"
