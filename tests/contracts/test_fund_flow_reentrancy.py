"""Reentrancy into the facility from a payee that gets control during the token transfer.

A second facility runs on HookToken, which calls the recipient during every transfer to it. The
payee, ReentrantPayee, holds the operator role, so only the reentrancy guard can stop its calls.
"""

from datetime import date

import pytest
from conftest import (
    CATEGORY_EQUIPMENT,
    DEFAULT_PENALTY_MARKUP_PCT,
    DEFAULT_SETTLEMENT_DAY,
    LIQUIDITY_FEN,
    day_number,
    next_request_id,
    reverts_with,
)
from eth_utils import keccak

LIMIT_FEN = 3_000_000_000  # 30,000,000.00
RATE_BPS = 435
OPENED = date(2027, 5, 10)
MATURITY = date(2028, 5, 9)
DRAWDOWN_DAY = date(2027, 5, 11)
LOCKED_FEN = 50_000_000  # 500,000.00
ENTRUSTED_FEN = 150_000_000  # 1,500,000.00
PAYOUT_FEN = 10_000_000  # 100,000.00
REENTRY_FEN = 7_000_000  # 70,000.00

ZERO_ADDRESS = "0x" + "00" * 20
INVOICE = keccak(b"invoice: tooling")
GUARD_SELECTOR = keccak(text="ReentrancyGuardReentrantCall()")[:4]

# ReentrantPayee.Attack and ReentrantPayee.Mode
ATTACKS = {"payFromLocked": 1, "payFromLockedBatch": 2, "repayFromLocked": 3, "drawdown": 4}
PROPAGATE = 0
RECORD = 1

ENTRIES = ["payFromLocked", "payFromLockedBatch", "entrustedDrawdown"]


@pytest.fixture(scope="module")
def hook_token(project, admin):
    return project.HookToken.deploy(sender=admin)


@pytest.fixture(scope="module")
def hook_facility(project, hook_token, rules, admin, operator, officer, treasury, default_policy):
    contract = project.CreditFacility.deploy(
        hook_token,
        rules,
        admin,
        DEFAULT_SETTLEMENT_DAY,
        DEFAULT_PENALTY_MARKUP_PCT,
        default_policy,
        sender=admin,
    )
    contract.grantRole(contract.OPERATOR_ROLE(), operator, sender=admin)
    contract.grantRole(contract.CREDIT_OFFICER_ROLE(), officer, sender=admin)
    contract.grantRole(contract.TREASURY_ROLE(), treasury, sender=admin)

    hook_token.mint(treasury, LIQUIDITY_FEN, sender=treasury)
    hook_token.approve(contract, LIQUIDITY_FEN, sender=treasury)
    contract.fundLiquidity(next_request_id(), LIQUIDITY_FEN, sender=treasury)
    return contract


@pytest.fixture(scope="module")
def attacker(project, hook_facility, hook_token, rules, admin, operator):
    payee = project.ReentrantPayee.deploy(hook_facility, hook_token, sender=admin)
    rules.registerPayee(payee, CATEGORY_EQUIPMENT, keccak(b"tooling supplier"), sender=operator)
    hook_facility.grantRole(hook_facility.OPERATOR_ROLE(), payee, sender=admin)
    return payee


@pytest.fixture
def line_id(hook_facility, operator, officer, borrower, travel):
    travel(OPENED)
    applied = hook_facility.applyForLine(
        next_request_id(),
        borrower,
        keccak(b"application"),
        LIMIT_FEN,
        RATE_BPS,
        day_number(MATURITY),
        sender=operator,
    )
    line = applied.events[0].lineId
    hook_facility.approveLine(next_request_id(), line, sender=officer)
    hook_facility.openLine(next_request_id(), line, sender=officer)
    travel(DRAWDOWN_DAY)
    return line


@pytest.fixture
def drawdown_id(hook_facility, operator, line_id):
    receipt = hook_facility.drawdown(
        next_request_id(), line_id, LOCKED_FEN, ZERO_ADDRESS, b"\x00" * 32, sender=operator
    )
    return receipt.events.filter(hook_facility.FundsLocked)[0].drawdownId


@pytest.fixture
def ledger(hook_facility, hook_token, attacker, line_id, drawdown_id):
    def read():
        line = hook_facility.lineState(line_id, hook_facility.today())
        return {
            "facility": hook_token.balanceOf(hook_facility),
            "attacker": hook_token.balanceOf(attacker),
            "totalLocked": hook_facility.totalLocked(),
            "drawdownLocked": hook_facility.lockedBalance(drawdown_id).amount,
            "lineLocked": line.locked,
            "principal": line.principal,
        }

    return read


def pay_attacker(hook_facility, operator, attacker, line_id, drawdown_id, entry):
    """Pay the attacker by `entry` and return the receipt and the amount paid."""
    if entry == "entrustedDrawdown":
        receipt = hook_facility.drawdown(
            next_request_id(), line_id, ENTRUSTED_FEN, attacker, INVOICE, sender=operator
        )
        return receipt, ENTRUSTED_FEN
    if entry == "payFromLocked":
        receipt = hook_facility.payFromLocked(
            next_request_id(), drawdown_id, attacker, PAYOUT_FEN, INVOICE, sender=operator
        )
        return receipt, PAYOUT_FEN
    payouts = [(drawdown_id, attacker, PAYOUT_FEN, INVOICE)]
    receipt = hook_facility.payFromLockedBatch(next_request_id(), payouts, sender=operator)
    return receipt, PAYOUT_FEN


def arm(attacker, attack, mode, line_id, drawdown_id, sender):
    attacker.arm(
        ATTACKS[attack], mode, next_request_id(), line_id, drawdown_id, REENTRY_FEN, sender=sender
    )


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_armedCall_succeedsOutsidePayout(
    hook_facility, hook_token, attacker, operator, line_id, drawdown_id, ledger, attack
):
    """Control: the payee may make each call, so a rejection during a payout is the guard's."""
    before = ledger()
    arm(attacker, attack, PROPAGATE, line_id, drawdown_id, operator)

    attacker.fireArmed(sender=operator)

    after = ledger()
    assert attacker.facilityCallsSucceeded() == 1
    if attack == "repayFromLocked":
        assert after["drawdownLocked"] == before["drawdownLocked"] - REENTRY_FEN
        assert after["attacker"] == 0
    else:
        assert after["attacker"] == REENTRY_FEN


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("entry", ENTRIES)
def test_reentry_revertsWholePayout(
    hook_facility, attacker, operator, line_id, drawdown_id, ledger, entry, attack
):
    arm(attacker, attack, PROPAGATE, line_id, drawdown_id, operator)
    before = ledger()

    with reverts_with(hook_facility.ReentrancyGuardReentrantCall):
        pay_attacker(hook_facility, operator, attacker, line_id, drawdown_id, entry)

    assert ledger() == before
    assert attacker.hookCalls() == 0


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("entry", ENTRIES)
def test_reentry_rejectedAndPaidOnce(
    hook_facility, attacker, operator, line_id, drawdown_id, ledger, entry, attack
):
    """The payee swallows the rejection, so the outer payout completes: it must be the only one."""
    arm(attacker, attack, RECORD, line_id, drawdown_id, operator)
    before = ledger()

    receipt, amount = pay_attacker(hook_facility, operator, attacker, line_id, drawdown_id, entry)

    after = ledger()
    assert attacker.hookCalls() == 1
    assert attacker.facilityCallsSucceeded() == 0
    assert bytes(attacker.lastRevertData()) == GUARD_SELECTOR
    attempt = receipt.events.filter(attacker.FacilityCallMade)[0]
    assert attempt.fromHook
    assert not attempt.succeeded
    assert len(receipt.events.filter(hook_facility.PayoutMade)) == 1
    assert after["attacker"] == amount
    assert after["facility"] == before["facility"] - amount
    if entry == "entrustedDrawdown":
        assert after["principal"] == before["principal"] + amount
        assert after["drawdownLocked"] == before["drawdownLocked"]
        assert after["totalLocked"] == before["totalLocked"]
    else:
        assert after["principal"] == before["principal"]
        assert after["drawdownLocked"] == before["drawdownLocked"] - amount
        assert after["lineLocked"] == before["lineLocked"] - amount
        assert after["totalLocked"] == before["totalLocked"] - amount
