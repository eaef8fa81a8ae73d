"""The auditor's history routes on the session's app: lines, borrowers, facilities and exports.

The module opens two lines for a borrower of its own, moves money on one of
them, and waits until the app's indexer has read every block.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from hexbytes import HexBytes
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3
from web3.contract import Contract

from ledger_bridge.chain.deployment import Deployment

from .conftest import Member
from .indexer_support import ChainActor, random_address, shared_chain_actor, wait_until_indexed
from .support import assert_problem

LINE_A_EVENTS = [
    "LineApplied",
    "LineApproved",
    "LineOpened",
    "LineDrawn",
    "FundsLocked",
    "LockedFundsReturned",
    "Repaid",
]


@dataclass(frozen=True)
class Activity:
    borrower: str
    line_a: int
    line_b: int
    facility: str


@pytest.fixture(scope="module")
def actor(w3: Web3, deployment: Deployment, line_applicant: str) -> ChainActor:
    return shared_chain_actor(w3, deployment, line_applicant)


@pytest.fixture(scope="module")
def activity(
    actor: ChainActor, w3: Web3, session_factory: sessionmaker[Session], facility: Contract
) -> Activity:
    borrower = random_address()
    line_a = actor.open_line(5_000_000, borrower=borrower)
    drawdown_id = actor.draw_locked(line_a, 100_000)
    actor.return_locked(drawdown_id, 40_000)
    line_b = actor.open_line(2_000_000, borrower=borrower)
    actor.draw_locked(line_b, 7_000)
    wait_until_indexed(session_factory, w3.eth.block_number)
    return Activity(borrower, line_a, line_b, facility.address)


def get_json(client: Any, member: Member, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params, headers=member.headers)
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(client: Any, member: Member, path: str, **params: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page_params = dict(params) if cursor is None else {**params, "cursor": cursor}
        page = get_json(client, member, path, **page_params)
        events.extend(page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def line_path(line_id: int) -> str:
    return f"/v1/audit/lines/{line_id}/events"


def test_line_events_carry_chain_positions(
    client: Any, auditor: Member, activity: Activity, w3: Web3
) -> None:
    page = get_json(
        client, auditor, line_path(activity.line_a), facility=activity.facility, limit=500
    )

    events = page["events"]
    assert [item["event"] for item in events][: len(LINE_A_EVENTS)] == LINE_A_EVENTS
    assert page["facility_address"] == activity.facility
    assert page["line_id"] == str(activity.line_a)
    assert page["indexed_through_block"] >= events[-1]["block_number"]
    for item in events:
        receipt = w3.eth.get_transaction_receipt(item["transaction_hash"])
        log_indexes = [log["logIndex"] for log in receipt["logs"]]
        assert item["block_number"] == receipt["blockNumber"]
        assert item["block_hash"] == HexBytes(receipt["blockHash"]).to_0x_hex()
        assert item["log_index"] in log_indexes
        assert item["line_id"] == str(activity.line_a)
        assert item["confirmed"] is True
        assert datetime.fromisoformat(item["block_timestamp"]).tzinfo is not None
    drawn = events[LINE_A_EVENTS.index("LineDrawn")]
    assert drawn["args"]["amount"] == "1000.00"


def test_line_pages_stay_stable_while_events_arrive(
    client: Any,
    auditor: Member,
    activity: Activity,
    actor: ChainActor,
    w3: Web3,
    session_factory: sessionmaker[Session],
) -> None:
    path = line_path(activity.line_b)
    first = get_json(client, auditor, path, facility=activity.facility, limit=2)
    actor.draw_locked(activity.line_b, 1_000)
    wait_until_indexed(session_factory, w3.eth.block_number)

    rest = all_pages(
        client, auditor, path, facility=activity.facility, limit=2, cursor=first["next_cursor"]
    )

    everything = get_json(client, auditor, path, facility=activity.facility, limit=500)["events"]
    assert first["events"] + rest == everything
    keys = [(item["transaction_hash"], item["log_index"]) for item in everything]
    assert len(keys) == len(set(keys))
    assert [item["event"] for item in everything][-2:] == ["LineDrawn", "FundsLocked"]


def test_line_events_filters(client: Any, auditor: Member, activity: Activity) -> None:
    path = line_path(activity.line_a)
    everything = get_json(client, auditor, path, facility=activity.facility, limit=500)["events"]
    opened = next(item for item in everything if item["event"] == "LineOpened")
    # Anvil stamps blocks with whole seconds, so several blocks may share a time.
    times = sorted({item["block_timestamp"] for item in everything})
    first_time, last_time = times[0], times[-1]

    by_name = get_json(
        client, auditor, path, facility=activity.facility, event=["LineDrawn", "FundsLocked"]
    )["events"]
    by_block = get_json(
        client,
        auditor,
        path,
        facility=activity.facility,
        from_block=opened["block_number"],
        to_block=opened["block_number"],
    )["events"]
    before_last = get_json(
        client, auditor, path, facility=activity.facility, to_time=last_time, limit=500
    )["events"]
    from_last = get_json(
        client, auditor, path, facility=activity.facility, from_time=last_time, limit=500
    )["events"]
    from_first = get_json(
        client, auditor, path, facility=activity.facility, from_time=first_time, limit=500
    )["events"]
    confirmed = get_json(
        client, auditor, path, facility=activity.facility, confirmed_only=True, limit=500
    )["events"]

    assert [item["event"] for item in by_name] == ["LineDrawn", "FundsLocked"]
    assert by_block == [
        item for item in everything if item["block_number"] == opened["block_number"]
    ]
    assert before_last == [item for item in everything if item["block_timestamp"] < last_time]
    assert from_last == [item for item in everything if item["block_timestamp"] >= last_time]
    assert from_last
    assert from_first == everything
    assert confirmed == everything


def test_borrower_events_cover_every_line(
    client: Any, auditor: Member, bank: Member, other_bank: Member, activity: Activity
) -> None:
    path = f"/v1/audit/borrowers/{activity.borrower.lower()}/events"

    page = get_json(client, auditor, path, limit=500)
    own = get_json(client, bank, path, limit=500)
    other = get_json(client, other_bank, path, limit=500)

    expected_lines = [
        {"facility_address": activity.facility, "line_id": str(line_id)}
        for line_id in (activity.line_a, activity.line_b)
    ]
    assert page["borrower"] == activity.borrower
    assert page["lines"] == expected_lines
    line_a = get_json(
        client, auditor, line_path(activity.line_a), facility=activity.facility, limit=500
    )
    line_b = get_json(
        client, auditor, line_path(activity.line_b), facility=activity.facility, limit=500
    )
    merged = sorted(
        line_a["events"] + line_b["events"],
        key=lambda item: (item["block_number"], item["log_index"]),
    )
    assert page["events"] == merged
    assert own["events"] == merged
    assert other["lines"] == []
    assert other["events"] == []


def test_facility_events_include_events_without_line(
    client: Any, auditor: Member, bank: Member, activity: Activity
) -> None:
    path = f"/v1/audit/facilities/{activity.facility}/events"

    policies = get_json(client, auditor, path, event="PolicyUpdated")["events"]
    own = get_json(client, bank, path, limit=5)

    assert policies
    assert all(item["line_id"] is None for item in policies)
    assert policies[0]["args"]["entrustedThreshold"] == "1000000.00"
    assert {item["contract_address"] for item in own["events"]} == {activity.facility}
    assert own["next_cursor"] is not None


@pytest.mark.parametrize("export_format", ["csv", "ndjson"])
def test_export_streams_the_same_events(
    client: Any, auditor: Member, activity: Activity, export_format: str
) -> None:
    params = {"facility": activity.facility}
    expected = get_json(client, auditor, line_path(activity.line_a), limit=500, **params)["events"]

    response = client.get(
        f"{line_path(activity.line_a)}/export",
        params={**params, "format": export_format},
        headers=auditor.headers,
    )

    assert response.status_code == 200, response.text
    assert (
        f'line-{activity.facility}-{activity.line_a}.{export_format}"'
        in (response.headers["content-disposition"])
    )
    if export_format == "ndjson":
        assert response.headers["content-type"] == "application/x-ndjson"
        exported = [json.loads(line) for line in response.text.splitlines()]
    else:
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        exported = [_from_csv(row) for row in csv.DictReader(io.StringIO(response.text))]
    assert exported == expected


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = dict(row)
    for name in ("block_number", "transaction_index", "log_index"):
        item[name] = int(row[name])
    item["confirmed"] = row["confirmed"] == "true"
    item["line_id"] = row["line_id"] or None
    item["args"] = json.loads(row["args"])
    return item


def test_borrower_export_has_a_header_and_every_event(
    client: Any, auditor: Member, activity: Activity
) -> None:
    path = f"/v1/audit/borrowers/{activity.borrower}/events"
    expected = get_json(client, auditor, path, limit=500)["events"]

    response = client.get(f"{path}/export", params={"format": "csv"}, headers=auditor.headers)

    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:3] == ["block_number", "block_hash", "block_timestamp"]
    assert len(rows) == len(expected) + 1


def test_line_check_on_live_index_is_consistent(
    client: Any, auditor: Member, activity: Activity
) -> None:
    check = get_json(
        client, auditor, f"/v1/audit/lines/{activity.line_a}/check", facility=activity.facility
    )

    assert check["consistent"] is True, check
    assert check["event_differences"] == []
    assert check["chain_event_count"] == check["index_event_count"]
    assert check["chain_event_count"] >= len(LINE_A_EVENTS)
    state = {item["field"]: item for item in check["state"]}
    assert state["principal"]["chain_value"] == "600.00"
    assert state["locked"]["index_value"] == "600.00"
    assert all(item["equal"] for item in check["state"])


def test_other_bank_cannot_read_this_facility(
    client: Any, other_bank: Member, activity: Activity
) -> None:
    facility_events = client.get(
        f"/v1/audit/facilities/{activity.facility}/events", headers=other_bank.headers
    )
    line_events = client.get(
        line_path(activity.line_a),
        params={"facility": activity.facility},
        headers=other_bank.headers,
    )

    assert_problem(facility_events, 404)
    assert_problem(line_events, 404)


def test_regulator_cannot_read_audit_history(
    client: Any, regulator: Member, activity: Activity
) -> None:
    response = client.get(
        line_path(activity.line_a),
        params={"facility": activity.facility},
        headers=regulator.headers,
    )

    assert_problem(response, 403)


INVALID_QUERIES = [
    pytest.param({"event": "LineDrawnn"}, "event", id="unknown-event"),
    pytest.param({"from_block": 9, "to_block": 3}, "from_block", id="from-block-after-to-block"),
    pytest.param({"from_time": "2026-12-05T08:00:00"}, "from_time", id="time-without-offset"),
    pytest.param(
        {"from_time": "2026-12-05T08:00:00Z", "to_time": "2026-12-05T08:00:00Z"},
        "from_time",
        id="empty-time-range",
    ),
    pytest.param({"cursor": "not-a-cursor"}, "not-a-cursor", id="foreign-cursor"),
    pytest.param({"limit": 0}, "limit", id="zero-limit"),
    pytest.param({"from_block": -1}, "from_block", id="negative-block"),
]


@pytest.mark.parametrize(("params", "named"), INVALID_QUERIES)
def test_invalid_query_is_rejected(
    client: Any, auditor: Member, activity: Activity, params: dict[str, Any], named: str
) -> None:
    response = client.get(
        line_path(activity.line_a),
        params={"facility": activity.facility, **params},
        headers=auditor.headers,
    )

    problem = assert_problem(response, 422)
    assert named in json.dumps(problem)


def test_auditor_must_name_facility_of_line(
    client: Any, auditor: Member, activity: Activity
) -> None:
    response = client.get(line_path(activity.line_a), headers=auditor.headers)

    problem = assert_problem(response, 422)
    assert "facility" in problem["detail"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        pytest.param("/v1/audit/lines/1000000000/events", 404, id="unknown-line"),
        pytest.param("/v1/audit/borrowers/0x1234/events", 422, id="malformed-borrower"),
        pytest.param(f"/v1/audit/facilities/{'0x' + '12' * 20}/events", 404, id="unknown-facility"),
    ],
)
def test_unknown_or_malformed_target_is_rejected(
    client: Any, auditor: Member, activity: Activity, path: str, status: int
) -> None:
    response = client.get(path, params={"facility": activity.facility}, headers=auditor.headers)

    assert_problem(response, status)
