#!/usr/bin/env bash
# Regenerates proto/gen/ from proto/cefiot/**/*.proto with the tools pinned in
# tools/go.mod (see proto/buf.gen.yaml), and k8s/base/kafka-pipeline.properties
# from libs/kafkaconf. The old output is deleted first, so
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
