#!/usr/bin/env bash
# The full reliability run behind `make reliability`: contract invariants, Slither, API fuzzing,
# security checks, chaos under load, and several replicas on one PostgreSQL database. Each part
# writes a JSON report into REPORT_DIR, by default .run/reliability. The run ends with the one
# line of reliability/summary.py, and exits non-zero when any part failed or any count is wrong.
# Every part is bounded by its own timeout, so the whole run stops by itself.
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
REPORT_DIR=${REPORT_DIR:-.run/reliability}
OPERATIONS=${RELIABILITY_OPERATIONS:-10000}
rm -rf "$REPORT_DIR" && mkdir -p "$REPORT_DIR"
export LEDGER_RELIABILITY_FULL=1
export LEDGER_RELIABILITY_REPORT_DIR=$PWD/$REPORT_DIR
failed=()

# Run one part under a time limit and record whether it failed. Usage: run NAME SECONDS COMMAND...
run() {
    local name=$1 seconds=$2
    shift 2
    echo "== $name (at most $((seconds / 60)) min)"
    local started=$SECONDS
    if ! timeout --signal=TERM --kill-after=30 "$seconds" "$@"; then
        failed+=("$name")
        echo "== $name failed after $((SECONDS - started)) s"
    else
        echo "== $name passed in $((SECONDS - started)) s"
    fi
}

if [ -z "${LEDGER_TEST_POSTGRES_URL:-}" ]; then
    # shellcheck source=tools/postgres.sh
    source tools/postgres.sh
    start_postgres || echo "PostgreSQL could not start; the replica part will fail"
fi

run slither 300 $BIN/python tools/slither_counts.py --report "$REPORT_DIR/slither.json" \
    contracts/CreditFacility.sol contracts/FundFlowRules.sol contracts/SettlementToken.sol
run invariants 1200 tools/with-anvil.sh $BIN/ape test \
    tests/contracts/test_facility_invariants.py tests/contracts/test_fund_flow_invariants.py \
    --network ethereum:local:foundry -q -p no:cacheprovider
run api-and-security 600 $BIN/python -m pytest \
    tests/reliability/test_api_fuzz.py tests/reliability/test_security.py \
    tests/integration/test_writes_access.py -q -p no:cacheprovider
# The load stops early enough that draining and reconciling fit in --deadline.
run chaos 780 $BIN/python -m reliability.chaos --operations "$OPERATIONS" \
    --kills 3 --anvil-restarts 2 --reorgs 2 --deadline 720
run replicas 360 $BIN/python -m reliability.chaos --replicas 3 --operations 3000 \
    --kills 2 --anvil-restarts 1 --reorgs 1 --deadline 300

[ ${#failed[@]} -eq 0 ] || echo "parts that failed: ${failed[*]}"
$BIN/python -m reliability.summary "$REPORT_DIR"
status=$?
[ ${#failed[@]} -eq 0 ] || status=1
exit $status
