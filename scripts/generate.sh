#!/usr/bin/env bash
# Regenerates proto/gen/ from proto/cefiot/**/*.proto with the tools pinned in
# tools/go.mod (see proto/buf.gen.yaml), k8s/base/kafka-pipeline.properties
# from libs/kafkaconf, and each site overlay's kafka-budget.properties from
# its kafka-budget.args. The old output is deleted first, so
# files of removed protos disappear too. Safe to run repeatedly, from any
# directory; tool binaries are cached in .cache/bin/ of the repository.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/tools/install.sh"
export PATH="$root/.cache/bin:$PATH"
export BUF_CACHE_DIR="$root/.cache/buf"

cd "$root/proto"
rm -rf gen
buf generate
echo "generated proto/gen/" >&2

cd "$root/cmd"
go run ./cefiot-kafka deployed-properties > "$root/k8s/base/kafka-pipeline.properties.new"
mv "$root/k8s/base/kafka-pipeline.properties.new" "$root/k8s/base/kafka-pipeline.properties"
echo "generated k8s/base/kafka-pipeline.properties" >&2

# Each site's disk budget (k8s/overlays/<site>/kafka-budget.args) as its
# brokers' retention.
for args in "$root"/k8s/overlays/*/kafka-budget.args; do
  [[ -e "$args" ]] || continue
  out="$(dirname "$args")/kafka-budget.properties"
  # shellcheck disable=SC2046 # one flag or value a word
  go run ./cefiot-kafka budget-properties $(grep -v '^#' "$args") > "$out.new"
  mv "$out.new" "$out"
  echo "generated ${out#"$root"/}" >&2
done
