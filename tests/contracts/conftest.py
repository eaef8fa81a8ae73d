"""Fixtures for the contract tests: accounts by role, then deployed contracts, then line factories.

Run with `ape test tests/contracts --network ethereum:local:foundry` (Anvil from npm). Ape takes a
chain snapshot around each fixture scope, so every test starts from the state its fixtures built.
"""

from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone

import pytest

CST = timezone(timedelta(hours=8))
DEFAULT_SETTLEMENT_DAY = 21
DEFAULT_PENALTY_MARKUP_PCT = 50
ENTRUSTED_THRESHOLD_FEN = 100_000_000  # 1,000,000.00
LIQUIDITY_FEN = 10**14  # 1,000,000,000,000.00
OPERATOR_FLOAT_FEN = 10**13

# Category codes used by the tests; the bridge documents the full list.
CATEGORY_RESEARCH = 101
CATEGORY_EQUIPMENT = 102
CATEGORY_RAW_MATERIALS = 103
CATEGORY_CRYPTO_EXCHANGE = 901


def day_number(day: date) -> int:
    """Return the contract's day number (days since 1970-01-01, China Standard Time)."""
    return (day - date(1970, 1, 1)).days


def cst_timestamp(day: date, at: time = time(10, 0)) -> int:
    """Return the Unix timestamp of `day` at `at` China Standard Time."""
    return int(datetime.combine(day, at, tzinfo=CST).timestamp())


@pytest.fixture(scope="session")
def admin(accounts):
    return accounts[0]


@pytest.fixture(scope="session")
def operator(accounts):
    return accounts[1]


@pytest.fixture(scope="session")
def officer(accounts):
    return accounts[2]


@pytest.fixture(scope="session")
def second_officer(accounts):
    return accounts[3]


@pytest.fixture(scope="session")
def regulator(accounts):
    return accounts[4]


@pytest.fixture(scope="session")
def treasury(accounts):
    return accounts[5]


@pytest.fixture(scope="session")
def outsider(accounts):
    return accounts[6]


@pytest.fixture(scope="session")
def borrower(accounts):
    return accounts[7]


@pytest.fixture(scope="session")
def payees(accounts):
    """Three payee addresses with no keys in use: research, equipment, raw materials."""
    return [accounts[8].address, accounts[9].address, "0x" + "a1" * 20]


@pytest.fixture(scope="session")
def token(project, admin):
    return project.SettlementToken.deploy("Digital Yuan Deposit", "DYD", admin, sender=admin)


@pytest.fixture(scope="session")
def rules(project, admin, regulator, operator):
    contract = project.FundFlowRules.deploy(admin, regulator, sender=admin)
    contract.grantRole(contract.REGISTRAR_ROLE(), operator, sender=admin)
    return contract


@pytest.fixture(scope="session")
def default_policy():
    # (entrustedThreshold, maxLimitChangeBps, limitChangeIntervalDays, cycleThreshold, reviewRequired)
    return (ENTRUSTED_THRESHOLD_FEN, 2200, 90, 8, True)


@pytest.fixture(scope="session")
def facility(project, token, rules, admin, operator, officer, second_officer, treasury, default_policy):
    contract = project.CreditFacility.deploy(
        token, rules, admin, DEFAULT_SETTLEMENT_DAY, DEFAULT_PENALTY_MARKUP_PCT, default_policy, sender=admin
    )
    contract.grantRole(contract.OPERATOR_ROLE(), operator, sender=admin)
    contract.grantRole(contract.CREDIT_OFFICER_ROLE(), officer, sender=admin)
    contract.grantRole(contract.CREDIT_OFFICER_ROLE(), second_officer, sender=admin)
    contract.grantRole(contract.TREASURY_ROLE(), treasury, sender=admin)

    token.mint(treasury, LIQUIDITY_FEN, sender=admin)
    token.approve(contract, LIQUIDITY_FEN, sender=treasury)
    contract.fundLiquidity(next_request_id(), LIQUIDITY_FEN, sender=treasury)

    token.mint(operator, OPERATOR_FLOAT_FEN, sender=admin)
    token.approve(contract, 2**256 - 1, sender=operator)
    return contract


@pytest.fixture(scope="session")
def registered_payees(rules, operator, payees):
    categories = [CATEGORY_RESEARCH, CATEGORY_EQUIPMENT, CATEGORY_RAW_MATERIALS]
    for payee, category in zip(payees, categories, strict=True):
        rules.registerPayee(payee, category, b"\x11" * 32, sender=operator)
    return payees


_request_ids = iter(range(1, 2**63))


def next_request_id() -> int:
    """Return a request id never used before in this test session."""
    return next(_request_ids)


@pytest.fixture
def request_id() -> Callable[[], int]:
    return next_request_id


@pytest.fixture
def travel(chain) -> Callable[[date, time], None]:
    """Return a function that makes the next transaction happen at a CST date and time."""

    def move_to(day: date, at: time = time(10, 0)) -> None:
        target = cst_timestamp(day, at)
        if target < chain.pending_timestamp:
            raise ValueError(f"cannot move the chain back from {chain.pending_timestamp} to {target}")
        chain.pending_timestamp = target

    return move_to


@pytest.fixture
def open_line(facility, operator, officer, borrower, travel):
    """Return a factory that applies for, approves and opens a line on a given CST date."""

    def factory(limit_fen: int, rate_bps: int, opened: date, maturity: date) -> int:
        travel(opened)
        receipt = facility.applyForLine(
            next_request_id(), borrower, b"\x22" * 32, limit_fen, rate_bps, day_number(maturity), sender=operator
        )
        line_id = receipt.events[0].lineId
        facility.approveLine(next_request_id(), line_id, sender=officer)
        facility.openLine(next_request_id(), line_id, sender=officer)
        return line_id

    return factory
