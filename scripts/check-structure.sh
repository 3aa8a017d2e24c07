#!/usr/bin/env bash
# Checks the structure the code keeps:
#  - module boundaries: no service binary links a package of the test
#    harness (libs/harness: local Kafka clusters, the local stack, netem,
#    proxies, process control, etcd test servers, the video generator), and
#    only capture and enrich link OpenCV (gocv), libs none;
#  - one home for the pipeline's names: the topic names and the cloud
#    prefix are spelled out only in libs/pipeline (protos, docs, comments
#    and tests aside).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail=0
# Each list is taken whole before it is searched: `go list | grep -q` would
# end the list early, and its broken pipe would make a found match look
# like none under pipefail.
for svc in capture enrich bridge sink scheduler; do
  deps=$(go list -deps "./services/$svc")
  harness=$(grep '^github.com/cefiot/cefiot/libs/harness' <<<"$deps" || true)
  if [[ -n "$harness" ]]; then
    echo "services/$svc links the test harness:"; echo "$harness" | sed 's/^/  /'; fail=1
  fi
  if [[ $svc != capture && $svc != enrich ]] && grep -qx 'gocv.io/x/gocv' <<<"$deps"; then
    echo "services/$svc links OpenCV (gocv): only capture and enrich look at pictures"; fail=1
  fi
done
libs=$(cd libs && GOWORK=off go list -deps ./...)
if grep -qx 'gocv.io/x/gocv' <<<"$libs"; then
  echo "libs links OpenCV (gocv): shared plumbing must not"; fail=1
fi
# Code lines (not comments) that spell a topic name or the cloud prefix.
spelled=$(git grep --untracked -n -E '"(frames\.raw|frames\.enriched|frames\.deadletter|cameras\.status|sink\.deadletter)"|"edge-"' \
  -- '*.go' '*.js' ':!libs/pipeline/' ':!proto/' ':!*_test.go' | grep -v -E '^[^:]+:[0-9]+:\s*//' || true)
if [[ -n "$spelled" ]]; then
  echo "pipeline names spelled outside libs/pipeline (take them from there):"; echo "$spelled" | sed 's/^/  /'; fail=1
fi
[[ $fail == 0 ]] && echo "module boundaries hold; pipeline names have one home"
exit $fail
