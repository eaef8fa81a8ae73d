"""Run one bridge replica's transaction worker in a process of its own, for the lease tests.

Usage: python lease_replica.py CONFIG_JSON, where the JSON object has
rpc_url, database_url, facility, holder_id, lease_seconds,
lease_renewal_seconds and run_seconds. The signing key comes from the
LEDGER_TEST_SIGNER_KEY environment variable.

The worker runs its own thread, as in `ledger-bridge serve`, until
run_seconds have passed or the process gets SIGTERM, and then stops and
releases its leases. The tests kill the lease holder with SIGKILL instead.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading

from eth_account import Account

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.chain.worker import TransactionWorker
from ledger_bridge.storage.db import create_db_engine, create_session_factory


def main() -> int:
    config = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.INFO, format=f"{config['holder_id']} %(message)s")
    worker = TransactionWorker(
        w3=create_web3(config["rpc_url"], 10),
        session_factory=create_session_factory(create_db_engine(config["database_url"])),
        signers={SignerRole.OPERATOR: Account.from_key(os.environ["LEDGER_TEST_SIGNER_KEY"])},
        confirmations=1,
        poll_interval_seconds=0.05,
        max_pending=16,
        facility_addresses=[config["facility"]],
        lease_seconds=config["lease_seconds"],
        lease_renewal_seconds=config["lease_renewal_seconds"],
        holder_id=config["holder_id"],
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker.start()
    stop.wait(config["run_seconds"])
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
