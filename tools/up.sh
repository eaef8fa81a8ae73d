#!/usr/bin/env bash
# Start the whole local system: Anvil, the deployed contracts, the bridge and demo organisations.
# Called by `make up`, which has installed everything and compiled the contracts. Ctrl-C stops
# every process this script started, by process id.
set -euo pipefail

RPC_PORT="${LEDGER_RPC_PORT:-8545}"
API_PORT="${LEDGER_API_PORT:-8000}"
RUN_DIR="${LEDGER_RUN_DIR:-.run}"
RPC_URL="http://127.0.0.1:${RPC_PORT}"
API_URL="http://127.0.0.1:${API_PORT}"

export LEDGER_RPC_URL="${RPC_URL}"
export LEDGER_DEPLOYMENT_FILE="${RUN_DIR}/deployment.json"
export LEDGER_DATABASE_URL="sqlite:///${RUN_DIR}/ledger-bridge.db"
export LEDGER_ENVIRONMENT="development"
# The local demo signs with Anvil's public development keys; never use them on a real network.
export LEDGER_USE_DEVELOPMENT_KEYS="true"

started_pids=()

stop_started() {
    trap - EXIT INT TERM
    # Each child leads its own process group (setsid), so this also stops Anvil's native binary
    # behind its npm launcher.
    for pid in "${started_pids[@]}"; do
        kill -TERM -- "-${pid}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    echo "up: stopped Anvil and the bridge"
}
trap stop_started EXIT INT TERM

# Print one field of a JSON file, following keys and list indexes: json_field FILE KEY...
json_field() {
    python - "$@" <<'PYTHON'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2:]:
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value)
PYTHON
}

port_in_use() {
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_for() {
    local what="$1" attempts="$2"
    shift 2
    for _ in $(seq "${attempts}"); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "up: ${what} did not start; see ${RUN_DIR}/*.log" >&2
    exit 1
}

for port in "${RPC_PORT}" "${API_PORT}"; do
    if port_in_use "${port}"; then
        echo "up: port ${port} on 127.0.0.1 is in use; stop what runs there or set LEDGER_RPC_PORT/LEDGER_API_PORT" >&2
        exit 1
    fi
done

# Each run starts from a fresh chain, so the bridge's database starts fresh too.
rm -rf "${RUN_DIR}"
mkdir -p "${RUN_DIR}"

setsid anvil --host 127.0.0.1 --port "${RPC_PORT}" --silent >"${RUN_DIR}/anvil.log" 2>&1 &
started_pids+=($!)
wait_for "Anvil" 40 cast chain-id --rpc-url "${RPC_URL}"
echo "up: Anvil is running at ${RPC_URL} (chain id $(cast chain-id --rpc-url "${RPC_URL}"))"

APE_FOUNDRY_HOST="${RPC_URL}" ape run deploy --network ethereum:local:foundry >"${RUN_DIR}/deploy.log" 2>&1 \
    || { cat "${RUN_DIR}/deploy.log" >&2; exit 1; }
tail -n 1 "${RUN_DIR}/deploy.log"
APE_FOUNDRY_HOST="${RPC_URL}" ape run demo --network ethereum:local:foundry >"${RUN_DIR}/demo.log" 2>&1 \
    || { cat "${RUN_DIR}/demo.log" >&2; exit 1; }
tail -n 1 "${RUN_DIR}/demo.log"
payee="$(json_field "${LEDGER_DEPLOYMENT_FILE}" demo payees 0 address)"

ledger-bridge db upgrade >/dev/null
facility="$(json_field "${LEDGER_DEPLOYMENT_FILE}" facilities 0 address)"
ledger-bridge org create --name demo-bank --kind bank --facility "${facility}" --json >"${RUN_DIR}/bank.json"
ledger-bridge org create --name demo-auditor --kind auditor --json >"${RUN_DIR}/auditor.json"
ledger-bridge org create --name demo-regulator --kind regulator --json >"${RUN_DIR}/regulator.json"
{
    echo "export BANK_CREDENTIAL=$(json_field "${RUN_DIR}/bank.json" token)"
    echo "export AUDITOR_CREDENTIAL=$(json_field "${RUN_DIR}/auditor.json" token)"
    echo "export REGULATOR_CREDENTIAL=$(json_field "${RUN_DIR}/regulator.json" token)"
    echo "export PAYEE=${payee}"
} >"${RUN_DIR}/credentials.env"
rm -f "${RUN_DIR}"/{bank,auditor,regulator}.json

setsid ledger-bridge serve --host 127.0.0.1 --port "${API_PORT}" >"${RUN_DIR}/bridge.log" 2>&1 &
started_pids+=($!)
wait_for "the bridge" 60 curl -sf "${API_URL}/health"

cat <<EOF

The ledger is running.
  API docs:     ${API_URL}/docs
  OpenAPI:      ${API_URL}/openapi.json
  Chain (RPC):  ${RPC_URL}
  Logs:         ${RUN_DIR}/anvil.log, ${RUN_DIR}/bridge.log

Demo credentials (shown once; also in ${RUN_DIR}/credentials.env), sent as 'Authorization: Bearer ...':
$(sed 's/^/  /' "${RUN_DIR}/credentials.env")

In another shell, 'source ${RUN_DIR}/credentials.env', then draw on line 1 as the bank:
  curl -s -X POST ${API_URL}/v1/lines/1/drawdowns \\
    -H "Authorization: Bearer \$BANK_CREDENTIAL" -H "Idempotency-Key: first-drawdown-1" \\
    -H "Content-Type: application/json" \\
    -d '{"amount": "2500000.00", "payee": "'\$PAYEE'", "invoice_hash": "0x$(printf 'ab%.0s' {1..32})"}'
Follow the operation it returns, and read the line's live state:
  curl -s ${API_URL}/v1/operations/<operation id> -H "Authorization: Bearer \$BANK_CREDENTIAL"
  curl -s ${API_URL}/v1/lines/1 -H "Authorization: Bearer \$BANK_CREDENTIAL"
As the auditor, read the line's on-chain history and check the index against the chain:
  curl -s ${API_URL}/v1/audit/lines/1/events -H "Authorization: Bearer \$AUDITOR_CREDENTIAL"
  curl -s ${API_URL}/v1/audit/lines/1/check -H "Authorization: Bearer \$AUDITOR_CREDENTIAL"
As the regulator, verify every payout against the rules in force at its block:
  curl -s ${API_URL}/v1/regulator/verification -H "Authorization: Bearer \$REGULATOR_CREDENTIAL"

Press Ctrl-C to stop everything.
EOF

wait -n "${started_pids[@]}"
echo "up: a process stopped unexpectedly; see ${RUN_DIR}/*.log" >&2
