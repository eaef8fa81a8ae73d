"""A bank's portfolio views, on a chain of its own whose clock the tests move forward.

The chain gets a line drawn 70 days ago, so its interest is overdue. It also
gets lines that mature in 10, 12 and 20 days, of which the 12-day one is
renewed, and a line that completed nine revolving cycles, one more than the
threshold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from ledger_bridge.core.security import Role

from .conftest import Member
from .indexer_support import (
    DAY_SECONDS,
    PrivateChain,
    create_member,
    database_params,
    fresh_database,
    private_app,
    wait_until_indexed,
)
from .support import assert_problem

REVIEW_CYCLES = 9
OTHER_FACILITY = "0x" + "5e" * 20


@dataclass(frozen=True)
class Portfolio:
    chain: PrivateChain
    overdue: int
    fresh: int
    maturing_10: int
    maturing_20: int
    renewed: int
    flagged: int


@dataclass(frozen=True)
class PortfolioApp:
    client: Any
    bank: Member
    regulator: Member
    other_bank: Member


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portfolio]:
    chain = PrivateChain.start(tmp_path_factory.mktemp("portfolio-chain"))
    try:
        overdue = chain.open_line(5_000_000)
        chain.draw_locked(overdue, 1_000_000)
        chain.increase_time(70 * DAY_SECONDS)
        fresh = chain.open_line(5_000_000)
        chain.draw_locked(fresh, 100_000)
        maturing_10 = chain.open_line(term_days=10)
        maturing_20 = chain.open_line(term_days=20)
        renewed = chain.open_line(term_days=12)
        chain.transact(
            chain.facility.functions.renewLine(
                chain.request_id(), renewed, chain.today() + 200, 0, 0, 0
            ),
            "officer",
        )
        flagged = chain.open_line()
        for _ in range(REVIEW_CYCLES):
            chain.return_locked(chain.draw_locked(flagged, 100), 100)
        yield Portfolio(chain, overdue, fresh, maturing_10, maturing_20, renewed, flagged)
    finally:
        chain.stop()


@pytest.fixture(scope="module", params=database_params())
def app(
    request: pytest.FixtureRequest,
    portfolio: Portfolio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PortfolioApp]:
    chain = portfolio.chain
    for url in fresh_database(request.param, tmp_path_factory.mktemp("portfolio-db")):
        with private_app(chain, url) as client:
            sessions = client.app.state.session_factory
            wait_until_indexed(sessions, chain.w3.eth.block_number)
            yield PortfolioApp(
                client=client,
                bank=create_member(sessions, Role.BANK, chain.facility.address),
                regulator=create_member(sessions, Role.REGULATOR),
                other_bank=create_member(sessions, Role.BANK, OTHER_FACILITY),
            )


def read(
    app: PortfolioApp, view: str, member: Member | None = None, **params: Any
) -> dict[str, Any]:
    response = app.client.get(
        f"/v1/portfolio/{view}", params=params, headers=(member or app.bank).headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def line_ids(page: dict[str, Any]) -> list[int]:
    return [int(item["line_id"]) for item in page["lines"]]


def test_maturing_lines_within_default_window(app: PortfolioApp, portfolio: Portfolio) -> None:
    page = read(app, "maturing")

    assert line_ids(page) == [portfolio.maturing_10]
    line = page["lines"][0]
    assert line["days_to_maturity"] == 10
    assert line["status"] == "Active"
    assert line["borrower"] == portfolio.chain.borrower
    assert line["limit"] == "100000.00"
    assert page["facility_address"] == portfolio.chain.facility.address


def test_maturing_window_leaves_out_renewed_line(app: PortfolioApp, portfolio: Portfolio) -> None:
    wide = read(app, "maturing", within_days=25)
    narrow = read(app, "maturing", within_days=5)

    assert line_ids(wide) == [portfolio.maturing_10, portfolio.maturing_20]
    assert portfolio.renewed not in line_ids(wide)
    assert line_ids(narrow) == []


def test_maturing_lines_paginate(app: PortfolioApp, portfolio: Portfolio) -> None:
    first = read(app, "maturing", within_days=25, limit=1)
    second = read(app, "maturing", within_days=25, limit=1, cursor=first["next_cursor"])

    assert line_ids(first) == [portfolio.maturing_10]
    assert line_ids(second) == [portfolio.maturing_20]
    assert second["next_cursor"] is None


def test_review_flagged_lines(app: PortfolioApp, portfolio: Portfolio) -> None:
    page = read(app, "review-flagged", member=app.regulator)

    assert line_ids(page) == [portfolio.flagged]
    assert page["lines"][0]["revolving_cycles"] == REVIEW_CYCLES
    assert page["lines"][0]["review_flagged"] is True


def test_interest_overdue_lines(app: PortfolioApp, portfolio: Portfolio) -> None:
    page = read(app, "interest-overdue")

    assert line_ids(page) == [portfolio.overdue]
    line = page["lines"][0]
    assert line["principal"] == "10000.00"
    assert line["overdue_interest"] != "0.00"


def test_other_bank_cannot_read_this_portfolio(app: PortfolioApp) -> None:
    response = app.client.get("/v1/portfolio/maturing", headers=app.other_bank.headers)

    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("view", "params"),
    [
        pytest.param("maturing", {"within_days": -1}, id="negative-window"),
        pytest.param("maturing", {"within_days": 3651}, id="window-over-ten-years"),
        pytest.param("maturing", {"cursor": "soon"}, id="foreign-maturity-cursor"),
        pytest.param("interest-overdue", {"cursor": "1:2"}, id="foreign-line-cursor"),
        pytest.param("review-flagged", {"limit": 501}, id="limit-too-large"),
    ],
)
def test_invalid_portfolio_query_is_rejected(
    app: PortfolioApp, view: str, params: dict[str, Any]
) -> None:
    response = app.client.get(f"/v1/portfolio/{view}", params=params, headers=app.bank.headers)

    assert_problem(response, 422)
