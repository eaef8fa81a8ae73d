"""Run the transaction worker in a process of its own, for the crash tests.

Usage: python worker_process.py CONFIG_JSON, where the JSON object has
rpc_url, database_url, facility, operation_id and optionally kill_at. The
signing key comes from the LEDGER_TEST_SIGNER_KEY environment variable.

With kill_at, the process sends itself SIGKILL at that step, so nothing is
cleaned up, as in a power cut:

- claimed: after the operation was claimed ("sending"), before signing;
- stored: after the signed transaction was committed, before sending it;
- sent: after sending it, before its receipt is recorded.

Without kill_at, the worker runs until the operation is final and exits 0,
or exits 3 after 60 seconds.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from typing import Any

from eth_account import Account

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.chain.worker import TransactionWorker
from ledger_bridge.storage.db import create_db_engine, create_session_factory
from ledger_bridge.storage.models import Operation

RUN_SECONDS = 60
EXIT_TIMED_OUT = 3


def kill_now(*_: Any) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def install_kill(worker: TransactionWorker, kill_at: str) -> None:
    """Replace one step of the worker with a version that kills the process."""
    if kill_at == "claimed":
        worker._submit = kill_now  # type: ignore[method-assign]
    elif kill_at == "stored":
        worker._broadcast = kill_now  # type: ignore[method-assign]
    elif kill_at == "sent":
        send = worker._broadcast

        def send_then_kill(*arguments: Any) -> None:
            send(*arguments)
            kill_now()

        worker._broadcast = send_then_kill  # type: ignore[method-assign]
    else:
        raise ValueError(f"unknown kill_at {kill_at!r}; use claimed, stored or sent")


def main() -> int:
    config = json.loads(sys.argv[1])
    sessions = create_session_factory(create_db_engine(config["database_url"]))
    worker = TransactionWorker(
        w3=create_web3(config["rpc_url"], 10),
        session_factory=sessions,
        signers={SignerRole.OPERATOR: Account.from_key(os.environ["LEDGER_TEST_SIGNER_KEY"])},
        confirmations=1,
        poll_interval_seconds=0.05,
        max_pending=16,
        # A short lease, so that a restarted worker takes over from the crashed one soon.
        lease_seconds=1.0,
        lease_renewal_seconds=0.25,
        facility_addresses=[config["facility"]],
    )
    if config.get("kill_at"):
        install_kill(worker, config["kill_at"])
    operation_id = uuid.UUID(config["operation_id"])
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        worker.run_once()
        with sessions() as session:
            operation = session.get(Operation, operation_id)
            if operation is not None and operation.state.is_final:
                return 0
        time.sleep(0.05)
    return EXIT_TIMED_OUT


if __name__ == "__main__":
    sys.exit(main())
