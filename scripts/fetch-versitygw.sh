#!/usr/bin/env bash
# Install versitygw, the S3-compatible server the sink's S3 store tests run
# against on loopback, into <repo>/.cache/bin. It is built from its Go module
# (outside the workspace, GOWORK=off); a second call returns at once.
#
# Usage: scripts/fetch-versitygw.sh   (prints the binary's path on stdout)
#
# Environment:
#   VERSITYGW_VERSION  module version (default v1.8.0)
set -euo pipefail
VERSITYGW_VERSION="${VERSITYGW_VERSION:-v1.8.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.cache/bin"
marker="$bin/.versitygw-$VERSITYGW_VERSION"
if [[ -x "$bin/versitygw" && -f "$marker" ]]; then
	echo "$bin/versitygw"
	exit 0
fi
mkdir -p "$bin"
echo "fetch-versitygw: building versitygw $VERSITYGW_VERSION into $bin" >&2
(cd "$root" && GOWORK=off GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION")
touch "$marker"
echo "$bin/versitygw"
