#!/usr/bin/env bash
# Checks the structure the code keeps:
#  - module boundaries: no service binary links a package of the test
#    harness (libs/harness: local Kafka clusters, the local stack, netem,
#    proxies, process control, etcd test servers, the video generator), and
#    only capture has OpenCV (gocv) in its module graph;
#  - one home for the pipeline's names: the topic names and the cloud
#    prefix are spelled out only in libs/pipeline (protos, docs, comments
#    and tests aside).
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
# Code lines (not comments) that spell a topic name or the cloud prefix.
spelled=$(git grep --untracked -n -E '"(frames\.raw|frames\.enriched|frames\.deadletter|cameras\.status|sink\.deadletter)"|"edge-"' \
  -- '*.go' '*.js' ':!libs/pipeline/' ':!proto/' ':!*_test.go' | grep -v -E '^[^:]+:[0-9]+:\s*//' || true)
if [[ -n "$spelled" ]]; then
  echo "pipeline names spelled outside libs/pipeline (take them from there):"; echo "$spelled" | sed 's/^/  /'; fail=1
fi
[[ $fail == 0 ]] && echo "module boundaries hold; pipeline names have one home"
exit $fail
