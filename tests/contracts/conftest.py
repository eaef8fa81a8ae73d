"""Fixtures for the contract tests: accounts by role, then deployed contracts, then line factories.

Run with `ape test tests/contracts --network ethereum:local:foundry` (Anvil from npm). Ape takes a
chain snapshot around each fixture scope, so every test starts from the state its fixtures built.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta, timezone

import ape
import pytest
import reliability_report
from ape.exceptions import CustomError
from eth_utils import is_hex_address, keccak, to_checksum_address

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


# ---------------------------------------------------------------------------------------------
# Fund-flow lock
# ---------------------------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "reliability: a state machine counted in the reliability report"
    )


def pytest_collection_modifyitems(config, items):
    """Skip tests marked `slow` unless the `-m` expression names them.

    With LEDGER_RELIABILITY_FULL=1 the slow state machines marked `reliability` run as well.
    """
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip_slow = pytest.mark.skip(reason="long run; select it with `-m slow`")
    for item in items:
        if "slow" not in item.keywords:
            continue
        if reliability_report.FULL_RUN and "reliability" in item.keywords:
            continue
        item.add_marker(skip_slow)


def pytest_runtest_logreport(report):
    """Count the failed state-machine tests for the reliability report."""
    if report.failed and "reliability" in report.keywords:
        reliability_report.COUNTS["failures"] += 1


def pytest_sessionfinish(session, exitstatus):
    """Write the state machines' counts when LEDGER_RELIABILITY_REPORT_DIR names a directory."""
    if reliability_report.REPORT_DIR:
        reliability_report.write_report(reliability_report.REPORT_DIR)


@contextmanager
def reverts_with(error: type[CustomError], **inputs) -> Iterator:
    """Expect a revert with the custom error `error` carrying `inputs`.

    `ape.reverts` passes any revert it could not decode and ignores input names the error lacks,
    so this checks the decoded error's name and every expected input itself. Errors are matched by
    name, not by class: the facility's ABI declares the payout errors of the rules contract too, and
    Ape decodes a nested revert with whichever ABI it finds first. Address inputs are compared
    checksummed.

    NOTE: ape-foundry 0.8.12 drops the revert data of a failed `eth_call`, so a view function
    must be sent as a transaction (`contract.view.transact(..., sender=...)`) to be checked here.
    """
    expected = {name: _checksummed(value) for name, value in inputs.items()}
    with ape.reverts() as info:
        yield info

    raised = info.value
    assert isinstance(raised, CustomError), f"expected {error.__name__}, got undecoded {raised!r}"
    assert type(raised).__name__ == error.__name__, f"expected {error.__name__}, got {raised!r}"
    missing = sorted(set(expected) - set(raised.inputs))
    assert not missing, f"{error.__name__} has no inputs named {missing}"
    for name, value in expected.items():
        assert _checksummed(raised.inputs[name]) == value, f"{error.__name__}.{name}"


def _checksummed(value):
    if hasattr(value, "address"):
        return value.address
    if isinstance(value, str) and is_hex_address(value):
        return to_checksum_address(value)
    return value


@pytest.fixture
def crypto_exchange(rules, operator, regulator) -> str:
    """Return a payee registered in the crypto-exchange category, which the regulator blocked."""
    exchange = to_checksum_address("0x" + "c9" * 20)
    documents_hash = keccak(b"exchange registration")
    rules.registerPayee(exchange, CATEGORY_CRYPTO_EXCHANGE, documents_hash, sender=operator)
    rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, keccak(b"speculation risk"), sender=regulator)
    return exchange


# ---------------------------------------------------------------------------------------------
# Credit lines checked against the reference model
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def travel_to_day(chain, travel) -> Callable[[date], None]:
    """Return a function that moves the chain to 10:00 CST on a day, or leaves it if already on it.

    Several lines of one test can then act on the same day in any order.
    """

    def move_to(day: date) -> None:
        if chain.pending_timestamp < cst_timestamp(day):
            travel(day)
        next_day_start = cst_timestamp(day + timedelta(days=1), time(0, 0))
        assert chain.pending_timestamp < next_day_start, f"the chain is already past {day}"

    return move_to


@pytest.fixture
def modelled_line(
    facility, operator, officer, borrower, registered_payees, travel_to_day, request_id
):
    """Return a factory that opens a line and pairs it with a reference model of the same terms.

    The factory takes (limit_fen, rate_bps, opened, maturity) like `open_line`, and optionally the
    borrower, and returns a `ModelledLine` whose drawdowns pay the first registered payee. Unlike
    `open_line`, it can open several lines on one day.
    """
    from modelled_line import ModelledLine

    from ledger_bridge.reference.interest import LineModel

    def factory(
        limit_fen: int, rate_bps: int, opened: date, maturity: date, borrower_address=None
    ) -> ModelledLine:
        travel_to_day(opened)
        receipt = facility.applyForLine(
            request_id(),
            borrower_address or borrower,
            keccak(b"application"),
            limit_fen,
            rate_bps,
            day_number(maturity),
            sender=operator,
        )
        line_id = receipt.events[0].lineId
        facility.approveLine(request_id(), line_id, sender=officer)
        facility.openLine(request_id(), line_id, sender=officer)

        model = LineModel(
            limit_fen,
            rate_bps,
            maturity,
            settlement_day=DEFAULT_SETTLEMENT_DAY,
            penalty_markup_pct=DEFAULT_PENALTY_MARKUP_PCT,
        )
        payee = registered_payees[0]
        return ModelledLine(
            facility, line_id, model, opened, operator, payee, travel_to_day, request_id
        )

    return factory



@pytest.fixture(scope="session", autouse=True)
def _skip_printing_revert_traces():
    """Keep expected reverts fast by not printing a call trace for each one.

    ape-foundry 0.8.12 renders the whole call trace to the terminal on every revert, which costs
    a large share of each expected revert. The trace is still fetched and the custom error still
    decoded, so `ape.reverts` matching is unaffected.
    """
    from ape_ethereum.trace import TransactionTrace

    original = TransactionTrace.show
    TransactionTrace.show = lambda self, *args, **kwargs: None
    yield
    TransactionTrace.show = original
