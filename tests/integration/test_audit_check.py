"""The auditor's check of a line against the chain, on an app and chain of its own.

The tests change the app's index behind its back, as a faulty indexer or a
tampered database would, and expect the check to name each difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.core.security import Role
from ledger_bridge.storage.models import ChainEvent

from .conftest import Member
from .indexer_support import (
    PrivateChain,
    create_member,
    database_params,
    fresh_database,
    private_app,
    wait_until_indexed,
)
from .support import assert_problem


@dataclass(frozen=True)
class CheckedApp:
    client: Any
    sessions: sessionmaker[Session]
    auditor: Member
    bank: Member


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateChain]:
    private = PrivateChain.start(tmp_path_factory.mktemp("check-chain"))
    try:
        yield private
    finally:
        private.stop()


@pytest.fixture(scope="module", params=database_params())
def app(
    request: pytest.FixtureRequest, chain: PrivateChain, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CheckedApp]:
    for url in fresh_database(request.param, tmp_path_factory.mktemp("check-db")):
        with private_app(chain, url) as client:
            sessions = client.app.state.session_factory
            yield CheckedApp(
                client=client,
                sessions=sessions,
                auditor=create_member(sessions, Role.AUDITOR),
                bank=create_member(sessions, Role.BANK, chain.facility.address),
            )


@pytest.fixture
def line_id(chain: PrivateChain, app: CheckedApp) -> int:
    line = chain.open_line(3_000_000)
    drawdown_id = chain.draw_locked(line, 80_000)
    chain.return_locked(drawdown_id, 30_000)
    wait_until_indexed(app.sessions, chain.w3.eth.block_number)
    return line


def check(app: CheckedApp, line_id: int, member: Member | None = None) -> dict[str, Any]:
    response = app.client.get(
        f"/v1/audit/lines/{line_id}/check", headers=(member or app.auditor).headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def stored_event(sessions: sessionmaker[Session], line_id: int, name: str) -> ChainEvent:
    with sessions() as session:
        return session.scalars(
            select(ChainEvent).where(ChainEvent.line_id == line_id, ChainEvent.event == name)
        ).one()


def differing_fields(report: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {
        item["field"]: (item["index_value"], item["chain_value"])
        for item in report["state"]
        if not item["equal"]
    }


def test_check_of_untouched_index_is_consistent(
    app: CheckedApp, chain: PrivateChain, line_id: int
) -> None:
    report = check(app, line_id, app.bank)

    assert report["consistent"] is True, report
    assert report["line_id"] == str(line_id)
    assert report["facility_address"] == chain.facility.address
    assert report["through_block"] >= chain.w3.eth.block_number - 1
    assert report["through_block_hash"] == chain.block_hash(report["through_block"])
    assert report["chain_event_count"] == report["index_event_count"] == 7
    assert differing_fields(report) == {}


def test_check_finds_event_missing_from_index(app: CheckedApp, line_id: int) -> None:
    repaid = stored_event(app.sessions, line_id, "Repaid")
    with app.sessions() as session:
        session.execute(delete(ChainEvent).where(ChainEvent.id == repaid.id))
        session.commit()

    report = check(app, line_id)

    assert report["consistent"] is False
    assert report["event_differences"] == [
        {
            "kind": "missing-from-index",
            "block_number": repaid.block_number,
            "transaction_hash": repaid.transaction_hash,
            "log_index": repaid.log_index,
            "event": "Repaid",
            "fields": [],
        }
    ]
    # Without the repayment, the index still shows the principal of the drawdown.
    assert differing_fields(report) == {"principal": ("800.00", "500.00")}


def test_check_finds_altered_arguments(app: CheckedApp, line_id: int) -> None:
    locked = stored_event(app.sessions, line_id, "FundsLocked")
    with app.sessions() as session:
        row = session.get(ChainEvent, locked.id)
        assert row is not None
        row.args = {**row.args, "amount": "90000"}
        session.commit()

    report = check(app, line_id)

    assert [(item["kind"], item["fields"]) for item in report["event_differences"]] == [
        ("differs", ["args"])
    ]
    assert differing_fields(report) == {"locked": ("600.00", "500.00")}


def test_check_finds_event_not_on_chain(app: CheckedApp, line_id: int) -> None:
    opened = stored_event(app.sessions, line_id, "LineOpened")
    forged_hash = "0x" + "ab" * 32
    with app.sessions() as session:
        session.add(
            ChainEvent(
                block_number=opened.block_number,
                block_hash=opened.block_hash,
                block_timestamp=opened.block_timestamp,
                transaction_hash=forged_hash,
                transaction_index=0,
                log_index=900,
                contract_address=opened.contract_address,
                contract_name=opened.contract_name,
                event="LineFrozen",
                line_id=line_id,
                args={
                    "lineId": str(line_id),
                    "requestId": "1",
                    "by": opened.contract_address,
                    "byRegulator": True,
                },
                confirmed=True,
            )
        )
        session.commit()

    report = check(app, line_id)

    assert [(item["kind"], item["transaction_hash"]) for item in report["event_differences"]] == [
        ("not-on-chain", forged_hash)
    ]
    assert differing_fields(report) == {"frozenByRegulator": (True, False)}


def test_check_of_unknown_line_is_not_found(app: CheckedApp) -> None:
    response = app.client.get("/v1/audit/lines/999999/check", headers=app.auditor.headers)

    assert_problem(response, 404)


def test_check_reads_logs_in_small_ranges(
    app: CheckedApp, chain: PrivateChain, line_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = app.client.app.state.settings
    monkeypatch.setattr(
        app.client.app.state, "settings", settings.model_copy(update={"indexer_block_range": 2})
    )

    report = check(app, line_id)

    assert report["consistent"] is True, report
