"""Concurrent writes: one key sent many times, racing drawdowns and one signer's nonces.

Requests go to the app from a thread pool, so they reach the intake and the
worker together, as they would from a busy core-banking system.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.deployment import Deployment

from .conftest import Member, OpenLine
from .support import count_operations, wait_for_final
from .writes import read_line, submit

T = TypeVar("T")


def all_at_once(count: int, send: Callable[[int], T]) -> list[T]:
    """Call `send(0)` ... `send(count - 1)` from `count` threads released together."""
    barrier = threading.Barrier(count)

    def released(index: int) -> T:
        barrier.wait()
        return send(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(released, range(count)))


def finals(client: Any, member: Member, responses: list[httpx.Response]) -> list[dict[str, Any]]:
    """Check that every response is 202 and return each operation once it is final."""
    for response in responses:
        assert response.status_code == 202, response.text
    return [
        wait_for_final(client, response.headers["Location"], member.headers)
        for response in responses
    ]


def drawdowns_of_line(w3: Web3, facility: Contract, line_id: int, from_block: int) -> list[Any]:
    logs = facility.events.LineDrawn().get_logs(from_block=from_block)
    return [log for log in logs if log["args"]["lineId"] == line_id]


def operator_nonce(w3: Web3, deployment: Deployment) -> int:
    return w3.eth.get_transaction_count(deployment.accounts["operator"], "pending")


def test_same_key_ten_times_draws_once(
    client: Any,
    bank: Member,
    open_line: OpenLine,
    w3: Web3,
    facility: Contract,
    session_factory: sessionmaker[Session],
) -> None:
    line_id = open_line(1_000_000)
    first_block = w3.eth.block_number
    stored_before = count_operations(session_factory)
    key = f"same-key-{uuid.uuid4()}"
    path = f"/v1/lines/{line_id}/drawdowns"

    responses = all_at_once(10, lambda _: submit(client, bank, path, {"amount": "700.00"}, key=key))

    assert [response.status_code for response in responses] == [202] * 10, [
        response.text for response in responses
    ]
    assert len({response.json()["id"] for response in responses}) == 1
    replayed = [response.headers["Idempotent-Replayed"] for response in responses]
    assert sorted(replayed) == ["false"] + ["true"] * 9
    assert count_operations(session_factory) == stored_before + 1
    operation = finals(client, bank, responses[:1])[0]
    assert operation["state"] == "confirmed", operation
    assert len(drawdowns_of_line(w3, facility, line_id, first_block)) == 1
    assert read_line(client, bank, line_id)["principal"] == "700.00"


def test_twenty_racing_drawdowns_one_fits(
    client: Any, bank: Member, open_line: OpenLine, w3: Web3, facility: Contract
) -> None:
    line_id = open_line(1_000_000)  # 10,000.00 available
    first_block = w3.eth.block_number
    path = f"/v1/lines/{line_id}/drawdowns"

    responses = all_at_once(20, lambda _: submit(client, bank, path, {"amount": "6000.00"}))

    operations = finals(client, bank, responses)
    confirmed = [item for item in operations if item["state"] == "confirmed"]
    failed = [item for item in operations if item["state"] == "failed"]
    assert len(confirmed) == 1, operations
    assert len(failed) == 19, operations
    for operation in failed:
        assert operation["revert"]["error"] == "CreditLimitExceeded", operation["revert"]
        assert operation["revert"]["args"] == {
            "lineId": str(line_id),
            "available": "400000",
            "requested": "600000",
        }
        assert "4,000.00 available" in operation["revert"]["message"]
    assert len(drawdowns_of_line(w3, facility, line_id, first_block)) == 1
    assert read_line(client, bank, line_id)["principal"] == "6000.00"


def test_fifty_drawdowns_use_consecutive_nonces(
    client: Any,
    bank: Member,
    open_line: OpenLine,
    w3: Web3,
    facility: Contract,
    deployment: Deployment,
) -> None:
    line_id = open_line(10_000_000)
    first_block = w3.eth.block_number
    nonce_before = operator_nonce(w3, deployment)
    path = f"/v1/lines/{line_id}/drawdowns"

    responses = all_at_once(50, lambda _: submit(client, bank, path, {"amount": "10.00"}))

    operations = finals(client, bank, responses)
    assert [item["state"] for item in operations] == ["confirmed"] * 50, [
        item["revert"] for item in operations if item["revert"]
    ]
    nonces = sorted(item["nonce"] for item in operations)
    assert nonces == list(range(nonce_before, nonce_before + 50))
    assert operator_nonce(w3, deployment) == nonce_before + 50
    for operation in operations:
        receipt = w3.eth.get_transaction_receipt(operation["tx_hash"])
        assert receipt["status"] == 1
        assert w3.eth.get_transaction(operation["tx_hash"])["nonce"] == operation["nonce"]
    assert len(drawdowns_of_line(w3, facility, line_id, first_block)) == 50
    assert read_line(client, bank, line_id)["principal"] == "500.00"


def test_failed_estimation_leaves_no_nonce_gap(
    client: Any, bank: Member, open_line: OpenLine, w3: Web3, deployment: Deployment
) -> None:
    line_id = open_line(100_000)  # 1,000.00
    nonce_before = operator_nonce(w3, deployment)
    path = f"/v1/lines/{line_id}/drawdowns"
    bodies = [{"amount": "100.00"}, {"amount": "5000.00"}, {"amount": "200.00"}]

    first, middle, last = finals(
        client, bank, [submit(client, bank, path, body) for body in bodies]
    )

    assert first["state"] == "confirmed", first
    assert middle["state"] == "failed", middle
    assert middle["revert"]["error"] == "CreditLimitExceeded"
    assert middle["nonce"] is None
    assert middle["tx_hash"] is None
    assert last["state"] == "confirmed", last
    assert (first["nonce"], last["nonce"]) == (nonce_before, nonce_before + 1)
    assert operator_nonce(w3, deployment) == nonce_before + 2
    assert read_line(client, bank, line_id)["principal"] == "300.00"
