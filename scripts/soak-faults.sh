#!/usr/bin/env bash
# Runs the scheduler fault tests RUNS times (default 10) and prints how many
# passed and the timing lines each run logged (fence stop against its
# margin, failover times), so the suite's timing bounds can be checked
# against what this machine really takes. Run it beside `make test` to
# measure under CI's load.
#   scripts/soak-faults.sh [RUNS] [go test -run pattern]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-10}
pattern=${2:-'TestSchedulerFaults|TestKilledWorkerProcessComesBack'}
logs=${SOAK_DIR:-$(mktemp -d)}
pass=0
for i in $(seq 1 "$runs"); do
  log="$logs/run-$i.log"
  if (cd cmd && CEFIOT_REQUIRE_KAFKA=1 CEFIOT_BIN_DIR="$PWD/../bin" go test -count=1 -v -timeout 20m -run "$pattern" ./e2e/) >"$log" 2>&1; then
    pass=$((pass + 1)); verdict=PASS
  else
    verdict=FAIL
  fi
  echo "run $i: $verdict ($log)"
  grep -E '^\s+[a-z_]+_test.go:[0-9]+: .*(after|ms|s\b)' "$log" | sed 's/^ */    /'
  grep -E -- '^\s*--- (PASS|FAIL)' "$log" | sed 's/^ */    /'
done
echo "soak: $pass passed, $((runs - pass)) failed"
[ "$pass" -eq "$runs" ]
