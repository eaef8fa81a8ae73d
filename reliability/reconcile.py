"""Compare the responses the clients received with the bridge's database and with the chain.

The facility's LineDrawn and Repaid events carry the request id that the
bridge gave the operation (`operations.request_id`), so each accepted
drawdown or repayment maps to the events with its request id.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from ledger_bridge.chain.contracts import CREDIT_FACILITY, contract_at
from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.storage.models import ChainEvent, Operation, OperationState

from .load import UNFINISHED_STATES, RequestRecord

FINAL_POLL_SECONDS = 1.0
INDEX_WAIT_SECONDS = 60
LOG_BLOCK_RANGE = 5_000


@dataclass
class Reconciliation:
    accepted: int = 0
    rejected: int = 0
    unknown: int = 0
    confirmed: int = 0
    failed: int = 0
    unfinished: int = 0
    lost: int = 0
    duplicated: int = 0
    rejected_stored: int = 0
    nonce_errors: int = 0
    index_mismatches: int = 0
    samples: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.samples) < 20:
            self.samples.append(text)


def wait_until_final(sessions: sessionmaker[Session], timeout_seconds: float) -> int:
    """Wait until no operation is unfinished, at most `timeout_seconds`; return those left."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        with sessions() as session:
            left = len(
                session.scalars(
                    select(Operation.id).where(Operation.state.in_(UNFINISHED_STATES))
                ).all()
            )
        if left == 0 or time.monotonic() >= deadline:
            return left
        time.sleep(FINAL_POLL_SECONDS)


def reconcile(
    records: list[RequestRecord],
    sessions: sessionmaker[Session],
    w3: Web3,
    deployment: Deployment,
) -> Reconciliation:
    """Check every request against the database and every request id against the chain."""
    result = Reconciliation()
    with sessions() as session:
        operations = {
            str(operation.id): operation for operation in session.scalars(select(Operation))
        }
    by_key = {operation.idempotency_key: operation for operation in operations.values()}
    on_chain = _request_ids_on_chain(w3, deployment)
    claimed: set[int] = set()

    for record in records:
        if record.outcome == "unsent":
            continue
        if record.kind == "conflict-resend":
            _check_conflict_resend(record, by_key, result)
            continue
        stored = by_key.get(record.key)
        if record.outcome == "rejected":
            result.rejected += 1
            if stored is not None:
                result.rejected_stored += 1
                result.note(f"{record.key} was rejected with {record.status} but stored")
            continue
        if record.outcome == "unknown":
            result.unknown += 1
            if stored is None:
                continue
            record.operation_id = str(stored.id)
            record.operation_ids.add(record.operation_id)
        result.accepted += 1
        if len(record.operation_ids) > 1:
            result.duplicated += 1
            result.note(f"{record.key} got operations {sorted(record.operation_ids)}")
        operation = operations.get(record.operation_id or "")
        if operation is None:
            result.lost += 1
            result.note(f"{record.key}: accepted operation {record.operation_id} is not stored")
            continue
        _check_operation(record, operation, on_chain, result)
        if operation.request_id is not None:
            claimed.add(operation.request_id)

    foreign = {
        request_id: count for request_id, count in on_chain.items() if request_id not in claimed
    }
    for request_id, count in foreign.items():
        result.duplicated += count
        result.note(f"request id {request_id} is on chain {count} times but no client received")
    result.nonce_errors = sum(
        1
        for operation in operations.values()
        if operation.revert is not None and "nonce" in str(operation.revert).lower()
    )
    return result


def _check_operation(
    record: RequestRecord, operation: Operation, on_chain: Counter[int], result: Reconciliation
) -> None:
    events = on_chain.get(operation.request_id, 0) if operation.request_id is not None else 0
    if operation.state is OperationState.CONFIRMED:
        result.confirmed += 1
        if events == 0:
            result.lost += 1
            result.note(f"{record.key}: operation {operation.id} is confirmed but not on chain")
        elif events > 1:
            result.duplicated += events - 1
            result.note(
                f"{record.key}: request id {operation.request_id} is on chain {events} times"
            )
    elif operation.state is OperationState.FAILED:
        result.failed += 1
        if events > 0:
            result.duplicated += events
            result.note(
                f"{record.key}: operation {operation.id} failed but is on chain {events} times"
            )
    else:
        result.unfinished += 1
        result.note(f"{record.key}: operation {operation.id} is still {operation.state.value}")
        if events == 0:
            result.lost += 1


def _check_conflict_resend(
    record: RequestRecord, by_key: dict[str, Operation], result: Reconciliation
) -> None:
    """The same key with another amount must be rejected and must not change the stored body."""
    if record.outcome == "rejected":
        result.rejected += 1
    elif record.outcome == "accepted":
        result.duplicated += 1
        result.note(f"{record.key}: a resend with another amount was accepted")
    stored = by_key.get(record.key)
    if stored is not None and stored.payload.get("amount") == record.body["amount"]:
        result.rejected_stored += 1
        result.note(f"{record.key}: the stored amount is the rejected resend's")


def _request_ids_on_chain(w3: Web3, deployment: Deployment) -> Counter[int]:
    """Count the LineDrawn and Repaid events of every request id on the facility."""
    facility = contract_at(w3, CREDIT_FACILITY, deployment.facilities[0].address)
    head = w3.eth.block_number
    counts: Counter[int] = Counter()
    for event in (facility.events.LineDrawn, facility.events.Repaid):
        for start in range(deployment.first_block, head + 1, LOG_BLOCK_RANGE):
            end = min(start + LOG_BLOCK_RANGE - 1, head)
            for log in event.get_logs(from_block=start, to_block=end):
                counts[int(log["args"]["requestId"])] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------------------------


def index_mismatches(
    w3: Web3,
    deployment: Deployment,
    sessions: sessionmaker[Session],
    samples: list[str],
    timeout_seconds: float = INDEX_WAIT_SECONDS,
) -> int:
    """Return how many logs the chain and the index do not share, up to the index's checkpoint.

    Logs are compared by block number, block hash, transaction hash and log
    index, for the facility and the fund-flow rules contract.
    """
    head = w3.eth.block_number
    deadline = time.monotonic() + timeout_seconds
    checkpoint_block = _checkpoint_block(sessions)
    while checkpoint_block < head and time.monotonic() < deadline:
        time.sleep(FINAL_POLL_SECONDS)
        checkpoint_block = _checkpoint_block(sessions)
    if checkpoint_block < head:
        samples.append(
            f"the index reached block {checkpoint_block} of {head} in {timeout_seconds:.0f} s"
        )
    through = min(checkpoint_block, w3.eth.block_number)
    addresses = [deployment.fund_flow_rules, *(item.address for item in deployment.facilities)]
    chain_keys: set[tuple[Any, ...]] = set()
    for start in range(deployment.first_block, through + 1, LOG_BLOCK_RANGE):
        end = min(start + LOG_BLOCK_RANGE - 1, through)
        for log in w3.eth.get_logs({"address": addresses, "fromBlock": start, "toBlock": end}):
            chain_keys.add(
                (
                    log["blockNumber"],
                    HexBytes(log["blockHash"]).to_0x_hex(),
                    HexBytes(log["transactionHash"]).to_0x_hex(),
                    log["logIndex"],
                )
            )
    lowered = [Web3.to_checksum_address(address) for address in addresses]
    with sessions() as session:
        rows = session.execute(
            select(
                ChainEvent.block_number,
                ChainEvent.block_hash,
                ChainEvent.transaction_hash,
                ChainEvent.log_index,
                ChainEvent.contract_address,
            ).where(ChainEvent.block_number <= through)
        ).all()
    stored_keys = {
        (row[0], row[1], row[2], row[3])
        for row in rows
        if Web3.to_checksum_address(row[4]) in lowered
    }
    missing = chain_keys - stored_keys
    extra = stored_keys - chain_keys
    for key in sorted(missing)[:5]:
        samples.append(f"log {key} is on chain but not in the index")
    for key in sorted(extra)[:5]:
        samples.append(f"log {key} is in the index but not on chain")
    return len(missing) + len(extra)


def _checkpoint_block(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        checkpoint = load_checkpoint(session)
        return -1 if checkpoint is None else int(checkpoint.block_number)
