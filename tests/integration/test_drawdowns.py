"""A drawdown from HTTP to chain to index: POST, worker, receipt, history."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from ledger_bridge.chain.deployment import Deployment

from .conftest import Member, OpenLine
from .support import assert_problem, count_operations, wait_for, wait_for_final

LIMIT_FEN = 10_000_000  # 100,000.00
LOCKED_DRAWDOWN = {"amount": "2500.00", "payee": None, "invoice_hash": None}


def post_drawdown(
    client: Any, member: Member, line_id: int, body: Any, key: str | None = None
) -> Any:
    headers = {**member.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return client.post(f"/v1/lines/{line_id}/drawdowns", json=body, headers=headers)


def read_history(client: Any, member: Member, line_id: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/lines/{line_id}/history", params=params, headers=member.headers)
    assert response.status_code == 200, response.text
    return response.json()


def wait_for_indexed(client: Any, member: Member, line_id: int, event: str) -> list[dict]:
    """Poll the line's history until it contains at least one `event`, and return those."""

    def matching() -> list[dict]:
        events = read_history(client, member, line_id, limit=500)["events"]
        return [item for item in events if item["event"] == event]

    return wait_for(matching, f"{event} of line {line_id} in the index")


def operator_nonce(w3: Web3, deployment: Deployment) -> int:
    return w3.eth.get_transaction_count(deployment.accounts["operator"], "pending")


@pytest.fixture(scope="module")
def line_id(open_line: OpenLine) -> int:
    return open_line(LIMIT_FEN)


def test_drawdown_reaches_chain_and_history(
    client: Any, bank: Member, line_id: int, w3: Web3, facility: Contract
) -> None:
    response = post_drawdown(client, bank, line_id, LOCKED_DRAWDOWN)

    assert response.status_code == 202, response.text
    location = response.headers["Location"]
    assert location == f"/v1/operations/{response.json()['id']}"
    operation = wait_for_final(client, location, bank.headers)
    assert operation["state"] == "confirmed", operation
    receipt = w3.eth.get_transaction_receipt(operation["tx_hash"])
    assert receipt["status"] == 1
    assert operation["block_number"] == receipt["blockNumber"]
    assert operation["block_hash"] == HexBytes(receipt["blockHash"]).to_0x_hex()
    # DISCARD skips the receipt's other events, which do not match LineDrawn's ABI.
    drawn_log = facility.events.LineDrawn().process_receipt(receipt, errors=DISCARD)[0]

    indexed = wait_for_indexed(client, bank, line_id, "LineDrawn")

    assert len(indexed) == 1
    event = indexed[0]
    assert event["block_number"] == receipt["blockNumber"]
    assert event["block_hash"] == HexBytes(receipt["blockHash"]).to_0x_hex()
    assert event["transaction_hash"] == operation["tx_hash"]
    assert event["log_index"] == drawn_log["logIndex"]
    assert event["args"]["amount"] == "2500.00"
    assert event["args"]["requestId"] == str(operation["request_id"])
    assert event["args"]["principalAfter"] == "2500.00"


def test_line_state_shows_drawn_principal(client: Any, bank: Member, open_line: OpenLine) -> None:
    line = open_line(LIMIT_FEN)
    operation = wait_for_final(
        client, post_drawdown(client, bank, line, LOCKED_DRAWDOWN).headers["Location"], bank.headers
    )
    assert operation["state"] == "confirmed", operation

    response = client.get(f"/v1/lines/{line}", headers=bank.headers)

    assert response.status_code == 200, response.text
    state = response.json()
    assert state["line_id"] == str(line)
    assert state["status"] == "Active"
    assert state["limit"] == "100000.00"
    assert state["principal"] == "2500.00"
    assert state["available"] == "97500.00"
    assert state["locked"] == "2500.00"
    assert state["as_of_block"] >= operation["block_number"]


def test_same_key_twice_draws_once(
    client: Any, bank: Member, open_line: OpenLine, session_factory: sessionmaker[Session]
) -> None:
    line = open_line(LIMIT_FEN)
    key = f"drawdown-{uuid.uuid4()}"
    stored_before = count_operations(session_factory)

    first = post_drawdown(client, bank, line, LOCKED_DRAWDOWN, key)
    second = post_drawdown(client, bank, line, LOCKED_DRAWDOWN, key)

    assert first.status_code == 202, first.text
    assert second.status_code == 202, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert count_operations(session_factory) == stored_before + 1
    operation = wait_for_final(client, first.headers["Location"], bank.headers)
    assert operation["state"] == "confirmed", operation
    assert len(wait_for_indexed(client, bank, line, "LineDrawn")) == 1
    state = client.get(f"/v1/lines/{line}", headers=bank.headers).json()
    assert state["principal"] == "2500.00"


REJECTED_REQUESTS = [
    pytest.param(None, LOCKED_DRAWDOWN, False, 400, id="missing-idempotency-key"),
    pytest.param("has spaces", LOCKED_DRAWDOWN, False, 400, id="malformed-idempotency-key"),
    pytest.param("k-unknown-line", LOCKED_DRAWDOWN, True, 404, id="unknown-line"),
    pytest.param("k-3-decimals", {"amount": "12.345"}, False, 422, id="three-decimals"),
    pytest.param("k-json-number", {"amount": 12.5}, False, 422, id="json-number-amount"),
    pytest.param("k-words", {"amount": "twelve"}, False, 422, id="non-decimal-amount"),
    pytest.param("k-zero", {"amount": "0.00"}, False, 422, id="zero-amount"),
    pytest.param(
        "k-payee-no-invoice",
        {"amount": "10.00", "payee": "0x" + "a1" * 20},
        False,
        422,
        id="payee-without-invoice-hash",
    ),
]


@pytest.mark.parametrize(("key", "body", "unknown_line", "status"), REJECTED_REQUESTS)
def test_rejected_drawdown_stores_and_sends_nothing(
    client: Any,
    bank: Member,
    line_id: int,
    w3: Web3,
    deployment: Deployment,
    session_factory: sessionmaker[Session],
    key: str | None,
    body: dict[str, Any],
    unknown_line: bool,
    status: int,
) -> None:
    stored_before = count_operations(session_factory)
    nonce_before = operator_nonce(w3, deployment)
    block_before = w3.eth.block_number
    target = 10**9 if unknown_line else line_id
    headers = dict(bank.headers)
    if key is not None:
        headers["Idempotency-Key"] = key

    response = client.post(f"/v1/lines/{target}/drawdowns", json=body, headers=headers)

    problem = assert_problem(response, status)
    assert problem["detail"]
    assert count_operations(session_factory) == stored_before
    assert operator_nonce(w3, deployment) == nonce_before
    assert w3.eth.block_number == block_before


def test_over_limit_fails_without_nonce_gap(
    client: Any, bank: Member, open_line: OpenLine, w3: Web3, deployment: Deployment
) -> None:
    line = open_line(1_000_000)  # 10,000.00
    nonce_before = operator_nonce(w3, deployment)

    over = post_drawdown(client, bank, line, {"amount": "20000.00"})
    failed = wait_for_final(client, over.headers["Location"], bank.headers)

    assert failed["state"] == "failed", failed
    assert failed["tx_hash"] is None
    assert failed["nonce"] is None
    assert failed["revert"]["error"] == "CreditLimitExceeded"
    assert failed["revert"]["args"] == {
        "lineId": str(line),
        "available": "1000000",
        "requested": "2000000",
    }
    assert failed["revert"]["message"] == (
        f"CreditLimitExceeded: line {line} has 10,000.00 available, 20,000.00 requested"
    )
    assert operator_nonce(w3, deployment) == nonce_before

    within = post_drawdown(client, bank, line, {"amount": "5000.00"})
    confirmed = wait_for_final(client, within.headers["Location"], bank.headers)

    assert confirmed["state"] == "confirmed", confirmed
    assert confirmed["nonce"] == nonce_before


def test_history_pages_follow_chain_order(client: Any, bank: Member, line_id: int) -> None:
    wait_for_indexed(client, bank, line_id, "LineDrawn")
    everything = read_history(client, bank, line_id, limit=500)["events"]

    pages, cursor = [], None
    while True:
        params = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        page = read_history(client, bank, line_id, **params)
        pages.extend(page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == everything
    positions = [(item["block_number"], item["log_index"]) for item in everything]
    assert positions == sorted(positions)
    assert [item["event"] for item in everything][:3] == [
        "LineApplied",
        "LineApproved",
        "LineOpened",
    ]


def test_history_filters_by_event(client: Any, bank: Member, line_id: int) -> None:
    wait_for_indexed(client, bank, line_id, "LineDrawn")

    page = read_history(client, bank, line_id, event=["LineOpened", "LineDrawn"])

    assert {item["event"] for item in page["events"]} == {"LineOpened", "LineDrawn"}


def test_auditor_reads_history_and_state(
    client: Any, auditor: Member, line_id: int, facility: Contract
) -> None:
    # The bridge serves two facilities, so an auditor names the one it reads.
    params = {"facility": facility.address}
    history = client.get(f"/v1/lines/{line_id}/history", params=params, headers=auditor.headers)
    state = client.get(f"/v1/lines/{line_id}", params=params, headers=auditor.headers)

    assert history.status_code == 200, history.text
    assert state.status_code == 200, state.text


def test_regulator_cannot_read_history(client: Any, regulator: Member, line_id: int) -> None:
    response = client.get(f"/v1/lines/{line_id}/history", headers=regulator.headers)

    assert_problem(response, 403)


def test_auditor_cannot_draw(client: Any, auditor: Member, line_id: int) -> None:
    response = post_drawdown(client, auditor, line_id, LOCKED_DRAWDOWN)

    assert_problem(response, 403)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/v1/lines/{unknown}", 404, id="state-unknown-line"),
        pytest.param("/v1/lines/{unknown}/history", 404, id="history-unknown-line"),
        pytest.param("/v1/lines/0", 422, id="state-line-zero"),
        pytest.param("/v1/lines/{line}/history?cursor=not-a-cursor", 422, id="bad-cursor"),
        pytest.param("/v1/lines/{line}/history?event=NoSuchEvent", 422, id="unknown-event"),
    ],
)
def test_line_reads_reject_bad_input(
    client: Any, bank: Member, line_id: int, path: str, status: int
) -> None:
    response = client.get(path.format(unknown=10**9, line=line_id), headers=bank.headers)

    assert_problem(response, status)
