"""A worker killed with SIGKILL at each step of sending still draws exactly once after a restart.

Each test stores an accepted drawdown in a database of its own and runs the
worker in a subprocess (tests/integration/worker_process.py) that kills
itself at one step. The test checks what the kill left behind, then restarts:
a new worker on the same database runs until the operation is final. The
worker signs as the fixtures' line applicant, so the app's worker and its
nonces are not involved.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import TransactionNotFound

from ledger_bridge.chain.calls import DRAWDOWN
from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.chain.worker import TransactionWorker
from ledger_bridge.core.config import development_private_keys
from ledger_bridge.core.security import Role
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import (
    Operation,
    OperationState,
    RequestIdSequence,
    SignedTransaction,
)
from ledger_bridge.storage.operations import request_fingerprint, submit_operation
from ledger_bridge.storage.organisations import create_organisation, find_active_credential

from .conftest import REPOSITORY, OpenLine
from .support import wait_for

WORKER_SCRIPT = Path(__file__).with_name("worker_process.py")
PROCESS_SECONDS = 90
# Far above the request ids of the app's database and of test_worker.py on the same facility.
FIRST_REQUEST_ID = 2 * 10**12
DRAWDOWN_BODY = {"amount": "100.00", "payee": None, "invoice_hash": None}
# Position of `principal` in the LineState tuple that lineState returns.
PRINCIPAL_FIELD = 9


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    upgrade_to_head(url)
    return url


@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    return create_session_factory(create_db_engine(database_url))


@pytest.fixture
def signer_key(line_applicant: str) -> str:
    for key in development_private_keys():
        if Account.from_key(key).address == line_applicant:
            return "0x" + key.hex()
    raise AssertionError(f"no development key for {line_applicant}")


AcceptDrawdown = Callable[[int], uuid.UUID]


@pytest.fixture
def accept_drawdown(sessions: sessionmaker[Session], facility: Contract) -> AcceptDrawdown:
    """Return a function that stores an accepted drawdown, as the API would."""
    with sessions() as session:
        bank = create_organisation(
            session, name="crash-test bank", kind=Role.BANK, facility_address=facility.address
        )
        session.execute(
            update(RequestIdSequence)
            .where(RequestIdSequence.facility_address == facility.address)
            .values(next_request_id=FIRST_REQUEST_ID + uuid.uuid4().int % 10**9)
        )
        session.commit()
        found = find_active_credential(session, bank.credential.key_id)
    assert found is not None
    principal = found[1]

    def accept(line_id: int) -> uuid.UUID:
        fingerprint = request_fingerprint("POST", f"/v1/lines/{line_id}/drawdowns", DRAWDOWN_BODY)
        with sessions() as session:
            result = submit_operation(
                session,
                principal,
                str(uuid.uuid4()),
                DRAWDOWN,
                DRAWDOWN_BODY,
                fingerprint,
                line_id=line_id,
            )
        return result.operation.id

    return accept


def run_worker_process(
    anvil_url: str,
    database_url: str,
    facility: Contract,
    operation_id: uuid.UUID,
    signer_key: str,
    kill_at: str,
) -> int:
    """Run tests/integration/worker_process.py to its end and return its exit status."""
    config = {
        "rpc_url": anvil_url,
        "database_url": database_url,
        "facility": facility.address,
        "operation_id": str(operation_id),
        "kill_at": kill_at,
    }
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPOSITORY / "backend"),
        "LEDGER_TEST_SIGNER_KEY": signer_key,
    }
    result = subprocess.run(
        [sys.executable, str(WORKER_SCRIPT), json.dumps(config)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=PROCESS_SECONDS,
        check=False,
    )
    assert result.returncode in (0, -signal.SIGKILL), result.stderr
    return result.returncode


def restart_worker(
    w3: Web3, sessions: sessionmaker[Session], facility: Contract, signer_key: str
) -> TransactionWorker:
    """Return a new worker on the crashed worker's database, as a restarted service builds."""
    return TransactionWorker(
        w3=w3,
        session_factory=sessions,
        signers={SignerRole.OPERATOR: Account.from_key(signer_key)},
        confirmations=1,
        poll_interval_seconds=0.05,
        max_pending=16,
        # A short lease, so that a restarted worker takes over from the crashed one soon.
        lease_seconds=1.0,
        lease_renewal_seconds=0.25,
        facility_addresses=[facility.address],
    )


def run_until_final(
    worker: TransactionWorker, sessions: sessionmaker[Session], operation_id: uuid.UUID
) -> Operation:
    def final_operation() -> Operation | None:
        worker.run_once()
        operation = load(sessions, operation_id)
        return operation if operation.state.is_final else None

    return wait_for(final_operation, f"operation {operation_id} to become final")


def load(sessions: sessionmaker[Session], operation_id: uuid.UUID) -> Operation:
    with sessions() as session:
        operation = session.get(Operation, operation_id)
        assert operation is not None
        return operation


def drawdowns_with_request_id(facility: Contract, request_id: int) -> int:
    logs = facility.events.LineDrawn().get_logs(from_block=0)
    return sum(1 for log in logs if log["args"]["requestId"] == request_id)


def signed_transactions(sessions: sessionmaker[Session], operation_id: uuid.UUID) -> list[str]:
    with sessions() as session:
        query = select(SignedTransaction.tx_hash).where(
            SignedTransaction.operation_id == operation_id
        )
        return list(session.scalars(query))


def check_left_behind(kill_at: str, stored: Operation, transactions: list[str], w3: Web3) -> None:
    """Check the state a kill at `kill_at` leaves in the database and on the node."""
    if kill_at == "claimed":
        assert stored.state is OperationState.SENDING
        assert transactions == []
        return
    assert stored.state is OperationState.SENT
    assert transactions == [stored.tx_hash]
    if kill_at == "stored":
        with pytest.raises(TransactionNotFound):
            w3.eth.get_transaction(stored.tx_hash)
    else:
        assert w3.eth.get_transaction(stored.tx_hash)["nonce"] == stored.nonce


@pytest.mark.parametrize("kill_at", ["claimed", "stored", "sent"])
def test_killed_worker_draws_once_after_restart(
    kill_at: str,
    anvil_url: str,
    database_url: str,
    sessions: sessionmaker[Session],
    facility: Contract,
    w3: Web3,
    signer_key: str,
    accept_drawdown: AcceptDrawdown,
    open_line: OpenLine,
) -> None:
    line_id = open_line(1_000_000)
    operation_id = accept_drawdown(line_id)

    status = run_worker_process(
        anvil_url, database_url, facility, operation_id, signer_key, kill_at
    )

    assert status == -signal.SIGKILL
    stored = load(sessions, operation_id)
    check_left_behind(kill_at, stored, signed_transactions(sessions, operation_id), w3)

    restarted = restart_worker(w3, sessions, facility, signer_key)
    final = run_until_final(restarted, sessions, operation_id)

    assert final.state is OperationState.CONFIRMED
    if kill_at != "claimed":
        assert (final.tx_hash, final.nonce) == (stored.tx_hash, stored.nonce)
    assert drawdowns_with_request_id(facility, final.request_id) == 1
    state = facility.functions.lineState(line_id, facility.functions.today().call()).call()
    assert state[PRINCIPAL_FIELD] == 10_000
