#!/usr/bin/env bash
# Checks the module boundaries: no service binary links a package of the
# test harness (libs/harness: local Kafka clusters, the local stack, netem,
# proxies, process control, etcd test servers, the video generator), and
# only capture has OpenCV (gocv) in its module graph.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail=0
for svc in capture enrich bridge sink scheduler; do
  harness=$(go list -deps "./services/$svc" | grep '^github.com/cefiot/cefiot/libs/harness' || true)
  if [[ -n "$harness" ]]; then
    echo "services/$svc links the test harness:"; echo "$harness" | sed 's/^/  /'; fail=1
  fi
  if [[ $svc != capture ]] && (cd "services/$svc" && GOWORK=off go mod graph | grep -q 'gocv.io/x/gocv'); then
    echo "services/$svc has gocv in its module graph"; fail=1
  fi
done
if (cd libs && GOWORK=off go mod graph | grep -q 'gocv.io/x/gocv'); then
  echo "libs has gocv in its module graph"; fail=1
fi
[[ $fail == 0 ]] && echo "module boundaries hold"
exit $fail
