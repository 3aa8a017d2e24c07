#!/usr/bin/env bash
# Fails when the committed proto/gen/ differs from what scripts/generate.sh
# produces from the current protos and pinned tools. Regenerates in place, so
# after a failure the working tree holds the fresh output, ready to commit.
# Works from any directory.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/scripts/generate.sh"

cd "$root"
changes="$(git status --porcelain --untracked-files=all -- proto/gen k8s/base/kafka-pipeline.properties 'k8s/overlays/*/kafka-budget.properties')"
if [[ -n "$changes" ]]; then
  {
    echo "error: proto/gen/, k8s/base/kafka-pipeline.properties or a k8s/overlays/*/kafka-budget.properties is out of date with proto/ (or tools/go.mod), libs/kafkaconf or its kafka-budget.args."
    echo "Run scripts/generate.sh and commit the result. Changed files:"
    echo "$changes"
    git diff --stat -- proto/gen k8s/base/kafka-pipeline.properties 'k8s/overlays/*/kafka-budget.properties'
  } >&2
  exit 1
fi
echo "proto/gen/, k8s/base/kafka-pipeline.properties and the sites' kafka-budget.properties are up to date" >&2
