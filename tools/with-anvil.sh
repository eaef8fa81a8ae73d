#!/usr/bin/env bash
# Run a command against a fresh Anvil on a free 127.0.0.1 port, then stop that Anvil.
#
# The chain starts on a fixed date (ANVIL_GENESIS_TIMESTAMP, default 2026-06-01 UTC) rather than
# today, so tests that move the clock forward to their scenario dates keep working after those
# dates have passed in real time. Ape reaches the node through APE_FOUNDRY_HOST.
set -euo pipefail

genesis_timestamp="${ANVIL_GENESIS_TIMESTAMP:-1780272000}"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log="$(mktemp)"

setsid anvil --host 127.0.0.1 --port "${port}" --timestamp "${genesis_timestamp}" --silent >"${log}" 2>&1 &
anvil_pid=$!
trap 'kill -TERM -- "-${anvil_pid}" 2>/dev/null || true; rm -f "${log}"' EXIT

for _ in $(seq 60); do
    if cast chain-id --rpc-url "http://127.0.0.1:${port}" >/dev/null 2>&1; then
        break
    fi
    sleep 0.5
done

APE_FOUNDRY_HOST="http://127.0.0.1:${port}" "$@"
