"""Several bridge replicas on one PostgreSQL database and one signer key.

Each replica is a worker process (tests/integration/lease_replica.py) with
the same signer, the fixtures' line applicant. Drawdowns are stored
concurrently through two intakes, each with an engine of its own as two
replicas' APIs would have, while the workers compete for the signer's lease.
Afterwards every operation is confirmed, drawn on chain exactly once, and
the signer's nonces are consecutive.

They run only when LEDGER_TEST_POSTGRES_URL names a PostgreSQL server where
the user may create databases, as the other PostgreSQL tests do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account import Account
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.calls import DRAWDOWN
from ledger_bridge.chain.lease import LeaseStatus, SignerLeases
from ledger_bridge.core.config import Settings, development_private_keys
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.storage.db import begin_write
from ledger_bridge.storage.models import (
    Operation,
    OperationState,
    RequestIdSequence,
    SignedTransaction,
    SignerLease,
)
from ledger_bridge.storage.operations import request_fingerprint, submit_operation
from ledger_bridge.storage.organisations import create_organisation, find_active_credential

from .conftest import REPOSITORY, OpenLine
from .indexer_support import database_params, fresh_database, session_factory_for
from .support import wait_for

REPLICA_SCRIPT = Path(__file__).with_name("lease_replica.py")
# Far above the request ids of the app's database and of the other worker tests.
FIRST_REQUEST_ID = 3 * 10**12
DRAWDOWN_BODY = {"amount": "1.00", "payee": None, "invoice_hash": None}
LEASE_SECONDS = 2.0
RENEWAL_SECONDS = 0.5
REPLICA_RUN_SECONDS = 120
FINAL_WAIT_SECONDS = 90
# A signer address for the tests of the lease table alone, which send nothing.
LEASE_ONLY_SIGNER = Web3.to_checksum_address("0x" + "ab" * 20)


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database("postgresql", tmp_path)


@pytest.fixture(params=database_params())
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite database, and a PostgreSQL one when LEDGER_TEST_POSTGRES_URL is set."""
    yield from fresh_database(request.param, tmp_path)


@pytest.fixture
def signer_key(line_applicant: str) -> str:
    for key in development_private_keys():
        if Account.from_key(key).address == line_applicant:
            return "0x" + key.hex()
    raise AssertionError(f"no development key for {line_applicant}")


@pytest.fixture
def principal(database_url: str, facility: Contract) -> Principal:
    """A bank of the facility, whose request ids start far above the other tests' ids."""
    sessions = session_factory_for(database_url)
    with sessions() as session:
        bank = create_organisation(
            session, name="lease-test bank", kind=Role.BANK, facility_address=facility.address
        )
        session.execute(
            update(RequestIdSequence)
            .where(RequestIdSequence.facility_address == facility.address)
            .values(next_request_id=FIRST_REQUEST_ID + uuid.uuid4().int % 10**9)
        )
        session.commit()
        found = find_active_credential(session, bank.credential.key_id)
    assert found is not None
    return found[1]


class Replicas:
    """Worker processes started by one test and stopped by their process ids."""

    def __init__(self, config: dict[str, object], signer_key: str, log_dir: Path) -> None:
        self._config = config
        self._environment = {
            **os.environ,
            "PYTHONPATH": str(REPOSITORY / "backend"),
            "LEDGER_TEST_SIGNER_KEY": signer_key,
        }
        self._log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, holder_id: str) -> None:
        config = {**self._config, "holder_id": holder_id}
        log = (self._log_dir / f"{holder_id}.log").open("wb")
        self.processes[holder_id] = subprocess.Popen(
            [sys.executable, str(REPLICA_SCRIPT), json.dumps(config)],
            env=self._environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, holder_id: str) -> None:
        process = self.processes[holder_id]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def log(self, holder_id: str) -> str:
        return (self._log_dir / f"{holder_id}.log").read_text()


@pytest.fixture
def replicas(
    anvil_url: str, database_url: str, facility: Contract, signer_key: str, tmp_path: Path
) -> Iterator[Replicas]:
    config: dict[str, object] = {
        "rpc_url": anvil_url,
        "database_url": database_url,
        "facility": facility.address,
        "lease_seconds": LEASE_SECONDS,
        "lease_renewal_seconds": RENEWAL_SECONDS,
        "run_seconds": REPLICA_RUN_SECONDS,
    }
    started = Replicas(config, signer_key, tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


AcceptMany = Callable[[int, int], list[uuid.UUID]]


@pytest.fixture
def accept_many(database_url: str, principal: Principal) -> AcceptMany:
    """Return a function that stores drawdowns concurrently through two intakes."""
    intakes = [session_factory_for(database_url), session_factory_for(database_url)]

    def accept_one(line_id: int, index: int) -> uuid.UUID:
        path = f"/v1/lines/{line_id}/drawdowns"
        with intakes[index % 2]() as session:
            result = submit_operation(
                session,
                principal,
                f"lease-{uuid.uuid4()}",
                DRAWDOWN,
                DRAWDOWN_BODY,
                request_fingerprint("POST", path, DRAWDOWN_BODY),
                line_id=line_id,
            )
        return result.operation.id

    def accept(line_id: int, count: int) -> list[uuid.UUID]:
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda index: accept_one(line_id, index), range(count)))

    return accept


def lease_row(sessions: sessionmaker[Session], address: str) -> SignerLease | None:
    with sessions() as session:
        return session.get(SignerLease, address)


def operations(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> list[Operation]:
    with sessions() as session:
        return list(session.scalars(select(Operation).where(Operation.id.in_(ids))))


def wait_until_final(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> list[Operation]:
    def all_final() -> list[Operation] | None:
        found = operations(sessions, ids)
        return found if all(item.state.is_final for item in found) else None

    return wait_for(all_final, f"{len(ids)} operations to become final", FINAL_WAIT_SECONDS)


def drawdowns_by_request_id(facility: Contract, line_id: int, from_block: int) -> dict[int, int]:
    counts: dict[int, int] = {}
    for log in facility.events.LineDrawn().get_logs(from_block=from_block):
        if log["args"]["lineId"] == line_id:
            request_id = log["args"]["requestId"]
            counts[request_id] = counts.get(request_id, 0) + 1
    return counts


def signed_nonces(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> list[int]:
    with sessions() as session:
        query = select(SignedTransaction.nonce).where(SignedTransaction.operation_id.in_(ids))
        return sorted(session.scalars(query))


def check_exactly_once(
    finals: list[Operation], facility: Contract, line_id: int, from_block: int, first_nonce: int
) -> None:
    """Check every operation confirmed once on chain, with consecutive nonces from first_nonce."""
    failed = [
        (item.id, item.revert) for item in finals if item.state is not OperationState.CONFIRMED
    ]
    assert failed == []
    drawn = drawdowns_by_request_id(facility, line_id, from_block)
    assert sorted(drawn) == sorted(item.request_id for item in finals)
    assert set(drawn.values()) == {1}
    nonces = sorted(item.nonce for item in finals)
    assert nonces == list(range(first_nonce, first_nonce + len(finals)))


def test_two_replicas_send_through_one_holder(
    w3: Web3,
    facility: Contract,
    database_url: str,
    signer_key: str,
    replicas: Replicas,
    accept_many: AcceptMany,
    open_line: OpenLine,
) -> None:
    line_id = open_line(10_000_000)
    signer = Account.from_key(signer_key).address
    first_block = w3.eth.block_number
    first_nonce = w3.eth.get_transaction_count(signer, "pending")
    sessions = session_factory_for(database_url)
    replicas.start("replica-a")
    replicas.start("replica-b")

    accepted = accept_many(line_id, 40)
    finals = wait_until_final(sessions, accepted)

    check_exactly_once(finals, facility, line_id, first_block, first_nonce)
    # One signature per operation: no replica signed again after a nonce clash.
    assert signed_nonces(sessions, accepted) == sorted(item.nonce for item in finals)
    lease = lease_row(sessions, signer)
    assert lease is not None
    assert lease.holder_id in {"replica-a", "replica-b"}
    assert lease.epoch == 1
    other = "replica-b" if lease.holder_id == "replica-a" else "replica-a"
    assert "is confirmed in block" not in replicas.log(other)
    assert f"Holding the lease on signer {signer}" not in replicas.log(other)


def test_killed_holder_is_taken_over(
    w3: Web3,
    facility: Contract,
    database_url: str,
    signer_key: str,
    replicas: Replicas,
    accept_many: AcceptMany,
    open_line: OpenLine,
) -> None:
    line_id = open_line(10_000_000)
    signer = Account.from_key(signer_key).address
    first_block = w3.eth.block_number
    first_nonce = w3.eth.get_transaction_count(signer, "pending")
    sessions = session_factory_for(database_url)
    for name in ("replica-a", "replica-b", "replica-c"):
        replicas.start(name)

    with ThreadPoolExecutor(max_workers=1) as load:
        first_batch = load.submit(accept_many, line_id, 60)
        holder = wait_for(
            lambda: (lease := lease_row(sessions, signer)) and lease.holder_id,
            "a replica to take the signer's lease",
        )
        wait_for(
            lambda: any(
                item.state is OperationState.CONFIRMED
                for item in operations(sessions, _all_ids(sessions))
            ),
            "the first confirmed drawdown",
        )
        replicas.kill(holder)
        accepted = first_batch.result()
    accepted += accept_many(line_id, 30)
    finals = wait_until_final(sessions, accepted)

    check_exactly_once(finals, facility, line_id, first_block, first_nonce)
    # One signature per operation: no replica signed again after a nonce clash.
    assert signed_nonces(sessions, accepted) == sorted(item.nonce for item in finals)
    lease = lease_row(sessions, signer)
    assert lease is not None
    assert lease.holder_id != holder
    # Under load a replica may also miss a renewal and pass the lease on once more.
    assert lease.epoch >= 2


def _all_ids(sessions: sessionmaker[Session]) -> list[uuid.UUID]:
    with sessions() as session:
        return list(session.scalars(select(Operation.id)))


def test_stale_holder_cannot_record(any_database_url: str) -> None:
    """A worker whose lease was taken over stores nothing, even before it notices."""
    sessions = session_factory_for(any_database_url)
    signer = LEASE_ONLY_SIGNER
    stale = SignerLeases(sessions, "stale", LEASE_SECONDS, RENEWAL_SECONDS)
    assert stale.refresh(signer) is LeaseStatus.ACQUIRED
    with sessions() as session:
        session.execute(
            update(SignerLease)
            .where(SignerLease.signer_address == signer)
            .values(holder_id="newer", epoch=SignerLease.epoch + 1)
        )
        session.commit()

    with sessions() as session:
        begin_write(session)
        still_holds = stale.holds_in_transaction(session, signer)
        session.rollback()

    assert still_holds is False
    newer = SignerLeases(sessions, "third", LEASE_SECONDS, RENEWAL_SECONDS)
    assert newer.refresh(signer) is LeaseStatus.NOT_HELD


def test_released_lease_is_taken_over(any_database_url: str) -> None:
    sessions = session_factory_for(any_database_url)
    signer = LEASE_ONLY_SIGNER
    first = SignerLeases(sessions, "first", LEASE_SECONDS, RENEWAL_SECONDS)
    second = SignerLeases(sessions, "second", LEASE_SECONDS, RENEWAL_SECONDS)
    assert first.refresh(signer) is LeaseStatus.ACQUIRED
    assert second.refresh(signer) is LeaseStatus.NOT_HELD

    first.release_all()

    assert second.refresh(signer) is LeaseStatus.ACQUIRED
    lease = lease_row(sessions, signer)
    assert lease is not None
    assert (lease.holder_id, lease.epoch) == ("second", 2)


@pytest.mark.parametrize(("lease_seconds", "renewal_seconds"), [(6.0, 2.5), (15.0, 15.0)])
def test_lease_renewal_above_third_rejected(lease_seconds: float, renewal_seconds: float) -> None:
    with pytest.raises(ValueError, match="LEDGER_WORKER_LEASE_RENEWAL_SECONDS"):
        Settings(worker_lease_seconds=lease_seconds, worker_lease_renewal_seconds=renewal_seconds)
