"""The transaction worker: after a crash every accepted operation still ends on chain once.

Each test drives `TransactionWorker.run_once` by hand on a database of its
own, signing as the fixtures' line applicant, so the app's worker and its
operator nonces are not involved. A crash is simulated by a first worker
that stops at a given step, and the restart by a second worker instance.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
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

from .conftest import OpenLine
from .support import wait_for

# Far above the request ids of the app's database, which start at 1 on the same facility.
FIRST_REQUEST_ID = 10**12
DRAWDOWN_BODY = {"amount": "100.00", "payee": None, "invoice_hash": None}


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    upgrade_to_head(url)
    return create_session_factory(create_db_engine(url))


@pytest.fixture
def signer(w3: Web3, line_applicant: str) -> LocalAccount:
    """The line applicant's key: Anvil's public development key of that account."""
    for key in development_private_keys():
        account = Account.from_key(key)
        if account.address == line_applicant:
            return account
    raise AssertionError(f"no development key for {line_applicant}")


AcceptDrawdown = Callable[[int], uuid.UUID]


@pytest.fixture
def accept_drawdown(
    sessions: sessionmaker[Session], facility: Contract, tmp_path: Path
) -> AcceptDrawdown:
    """Return a function that stores an accepted drawdown operation, as the API would."""
    with sessions() as session:
        bank = create_organisation(
            session, name=f"bank {tmp_path.name}", kind=Role.BANK, facility_address=facility.address
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
        path = f"/v1/lines/{line_id}/drawdowns"
        with sessions() as session:
            result = submit_operation(
                session,
                principal,
                str(uuid.uuid4()),
                DRAWDOWN,
                DRAWDOWN_BODY,
                request_fingerprint("POST", path, DRAWDOWN_BODY),
                line_id=line_id,
            )
        return result.operation.id

    return accept


def new_worker(
    w3: Web3,
    sessions: sessionmaker[Session],
    signer: LocalAccount,
    facility: Contract,
    deployed: bool = True,
) -> TransactionWorker:
    return TransactionWorker(
        w3=w3,
        session_factory=sessions,
        signers={SignerRole.OPERATOR: signer},
        confirmations=1,
        poll_interval_seconds=0.05,
        max_pending=16,
        # A short lease, so that a restarted worker takes over from the crashed one soon.
        lease_seconds=1.0,
        lease_renewal_seconds=0.25,
        facility_addresses=[facility.address] if deployed else [],
    )


def run_until_final(
    worker: TransactionWorker, sessions: sessionmaker[Session], operation_id: uuid.UUID
) -> Operation:
    """Run worker passes until the operation is final, as the worker's thread would."""

    def final_operation() -> Operation | None:
        worker.run_once()
        operation = load(sessions, operation_id)
        return operation if operation.state.is_final else None

    # Anvil mines sent transactions in a task of its own, so a receipt can lag the send.
    return wait_for(final_operation, f"operation {operation_id} to become final")


def load(sessions: sessionmaker[Session], operation_id: uuid.UUID) -> Operation:
    with sessions() as session:
        operation = session.get(Operation, operation_id)
        assert operation is not None
        return operation


def drawdowns_with_request_id(facility: Contract, request_id: int) -> int:
    logs = facility.events.LineDrawn().get_logs(from_block=0)
    return sum(1 for log in logs if log["args"]["requestId"] == request_id)


def crash_before_broadcast(worker: TransactionWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the worker stop right after it stored a signed transaction, before sending it."""
    monkeypatch.setattr(worker, "_broadcast", lambda *arguments: None)


def test_stored_transaction_is_resent_unchanged(
    w3: Web3,
    facility: Contract,
    sessions: sessionmaker[Session],
    signer: LocalAccount,
    accept_drawdown: AcceptDrawdown,
    open_line: OpenLine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operation_id = accept_drawdown(open_line(1_000_000))
    crashed = new_worker(w3, sessions, signer, facility)
    crash_before_broadcast(crashed, monkeypatch)
    crashed.run_once()
    stored = load(sessions, operation_id)
    assert stored.state is OperationState.SENT
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(stored.tx_hash)

    restarted = new_worker(w3, sessions, signer, facility)
    final = run_until_final(restarted, sessions, operation_id)

    assert final.state is OperationState.CONFIRMED
    assert final.tx_hash == stored.tx_hash
    assert final.nonce == stored.nonce
    assert drawdowns_with_request_id(facility, final.request_id) == 1


def test_sending_operation_is_sent_after_restart(
    w3: Web3,
    facility: Contract,
    sessions: sessionmaker[Session],
    signer: LocalAccount,
    accept_drawdown: AcceptDrawdown,
    open_line: OpenLine,
) -> None:
    operation_id = accept_drawdown(open_line(1_000_000))
    with sessions() as session:
        session.execute(
            update(Operation)
            .where(Operation.id == operation_id)
            .values(state=OperationState.SENDING)
        )
        session.commit()

    worker = new_worker(w3, sessions, signer, facility)
    final = run_until_final(worker, sessions, operation_id)

    assert final.state is OperationState.CONFIRMED
    assert drawdowns_with_request_id(facility, final.request_id) == 1


def test_used_request_id_is_never_sent_again(
    w3: Web3,
    facility: Contract,
    sessions: sessionmaker[Session],
    signer: LocalAccount,
    accept_drawdown: AcceptDrawdown,
    open_line: OpenLine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    line_id = open_line(1_000_000)
    operation_id = accept_drawdown(line_id)
    crashed = new_worker(w3, sessions, signer, facility)
    crash_before_broadcast(crashed, monkeypatch)
    crashed.run_once()
    stored = load(sessions, operation_id)
    # Another sender takes the stored transaction's nonce and uses its request id.
    zero_address = "0x" + "00" * 20
    foreign = facility.functions.drawdown(stored.request_id, line_id, 100, zero_address, bytes(32))
    foreign_hash = foreign.transact({"from": signer.address, "nonce": stored.nonce})
    assert w3.eth.wait_for_transaction_receipt(foreign_hash)["status"] == 1

    restarted = new_worker(w3, sessions, signer, facility)
    final = run_until_final(restarted, sessions, operation_id)

    assert final.state is OperationState.FAILED
    assert final.revert is not None
    assert final.revert["error"] == "RequestIdUsedElsewhere"
    assert drawdowns_with_request_id(facility, final.request_id) == 1
    with pytest.raises(TransactionNotFound):
        w3.eth.get_transaction(stored.tx_hash)


def test_taken_nonce_is_replaced_by_next_nonce(
    w3: Web3,
    facility: Contract,
    sessions: sessionmaker[Session],
    signer: LocalAccount,
    accept_drawdown: AcceptDrawdown,
    open_line: OpenLine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    operation_id = accept_drawdown(open_line(1_000_000))
    crashed = new_worker(w3, sessions, signer, facility)
    crash_before_broadcast(crashed, monkeypatch)
    crashed.run_once()
    stored = load(sessions, operation_id)
    # Another transaction of the same sender takes the nonce but not the request id.
    other = w3.eth.send_transaction(
        {"from": signer.address, "to": signer.address, "value": 0, "nonce": stored.nonce}
    )
    w3.eth.wait_for_transaction_receipt(other)

    restarted = new_worker(w3, sessions, signer, facility)
    final = run_until_final(restarted, sessions, operation_id)

    assert final.state is OperationState.CONFIRMED
    assert final.nonce == stored.nonce + 1
    assert final.tx_hash != stored.tx_hash
    assert drawdowns_with_request_id(facility, final.request_id) == 1
    with sessions() as session:
        signed = session.scalars(
            select(SignedTransaction.nonce).where(SignedTransaction.operation_id == operation_id)
        ).all()
    assert sorted(signed) == [stored.nonce, stored.nonce + 1]


def test_undeployed_facility_gets_no_transaction(
    w3: Web3,
    facility: Contract,
    sessions: sessionmaker[Session],
    signer: LocalAccount,
    accept_drawdown: AcceptDrawdown,
    open_line: OpenLine,
) -> None:
    operation_id = accept_drawdown(open_line(1_000_000))
    nonce_before = w3.eth.get_transaction_count(signer.address, "pending")
    worker = new_worker(w3, sessions, signer, facility, deployed=False)

    final = run_until_final(worker, sessions, operation_id)

    assert final.state is OperationState.FAILED
    assert final.revert is not None
    assert final.revert["error"] == "FacilityNotDeployed"
    assert final.tx_hash is None
    assert w3.eth.get_transaction_count(signer.address, "pending") == nonce_before
