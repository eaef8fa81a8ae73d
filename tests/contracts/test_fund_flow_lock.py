"""The fund-flow lock in CreditFacility: every path by which credit money could leave a line.

Each rejected attempt must revert with the error that names the payee and the rule, and must leave
every balance as it was: the payees', the facility's, the drawdown's locked balance and the line.
"""

from datetime import date

import pytest
from conftest import (
    CATEGORY_CRYPTO_EXCHANGE,
    CATEGORY_EQUIPMENT,
    CATEGORY_RAW_MATERIALS,
    CATEGORY_RESEARCH,
    ENTRUSTED_THRESHOLD_FEN,
    reverts_with,
)
from eth_utils import keccak, to_checksum_address

LIMIT_FEN = 3_000_000_000  # 30,000,000.00
RATE_BPS = 435
OPENED = date(2027, 1, 4)
MATURITY = date(2027, 12, 31)
DRAWDOWN_DAY = date(2027, 1, 5)
# Other lines open a day later: `travel` cannot return to 10:00 once a later block was mined.
OTHER_LINE_DAY = date(2027, 1, 6)
LOCKED_FEN = 50_000_000  # 500,000.00, below the entrusted threshold
ENTRUSTED_FEN = 150_000_000  # 1,500,000.00, above the entrusted threshold
PAYOUT_FEN = 10_000_000  # 100,000.00
SMALL_PAYOUT_FEN = 1_000_000  # 10,000.00

ZERO_ADDRESS = "0x" + "00" * 20
NO_INVOICE = b"\x00" * 32
INVOICE = keccak(b"invoice 2027-0001")
REASON_HASH = keccak(b"regulator notice")
UNREGISTERED = to_checksum_address("0x" + "de" * 20)

STATUS_DEFAULTED = 5

ENTRUSTED_PATHS = ["entrusted", "entrustedBelowThreshold"]
LOCKED_PATHS = ["payFromLocked", "batch", "delegate", "delegateBatch"]
PATHS = ENTRUSTED_PATHS + LOCKED_PATHS


@pytest.fixture
def line_id(open_line, travel):
    line = open_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    travel(DRAWDOWN_DAY)
    return line


def draw_locked(facility, operator, line_id, request_id, amount=LOCKED_FEN) -> int:
    """Draw `amount` self-directed and return the id of the drawdown that locks it."""
    receipt = facility.drawdown(
        request_id(), line_id, amount, ZERO_ADDRESS, NO_INVOICE, sender=operator
    )
    return receipt.events.filter(facility.FundsLocked)[0].drawdownId


@pytest.fixture
def drawdown_id(facility, operator, line_id, request_id):
    return draw_locked(facility, operator, line_id, request_id)


@pytest.fixture
def delegate(facility, operator, borrower, line_id, request_id):
    """The borrower's account, allowed to instruct payouts from its own line's locked money."""
    facility.setPayoutDelegate(request_id(), line_id, borrower, True, sender=operator)
    return borrower


@pytest.fixture
def pay(facility, operator, delegate, line_id, drawdown_id, registered_payees, request_id):
    """Return a function that sends one payout to `payee` by the named path.

    The batch paths put a valid payout to another registered payee first, so a rejection must
    also undo that one.
    """

    def send(path, payee, amount=PAYOUT_FEN, invoice=INVOICE):
        if path == "entrusted":
            return facility.drawdown(
                request_id(), line_id, ENTRUSTED_FEN, payee, invoice, sender=operator
            )
        if path == "entrustedBelowThreshold":
            return facility.drawdown(request_id(), line_id, amount, payee, invoice, sender=operator)
        sender = delegate if path.startswith("delegate") else operator
        if path in ("payFromLocked", "delegate"):
            return facility.payFromLocked(
                request_id(), drawdown_id, payee, amount, invoice, sender=sender
            )
        payouts = [
            (drawdown_id, registered_payees[1], amount, invoice),
            (drawdown_id, payee, amount, invoice),
        ]
        return facility.payFromLockedBatch(request_id(), payouts, sender=sender)

    return send


@pytest.fixture
def ledger(facility, token, line_id, drawdown_id, registered_payees):
    """Return a function that reads every balance a payout could change."""

    def read(*extra_accounts):
        line = facility.lineState(line_id, facility.today())
        watched = [*registered_payees, *extra_accounts]
        return {
            "facility": token.balanceOf(facility),
            "liquidity": facility.liquidity(),
            "totalLocked": facility.totalLocked(),
            "drawdownLocked": facility.lockedBalance(drawdown_id).amount,
            "lineLocked": line.locked,
            "principal": line.principal,
            **{f"payee {account}": token.balanceOf(account) for account in watched},
        }

    return read


# ---------------------------------------------------------------------------------------------
# Payees the rules reject, on every path
# ---------------------------------------------------------------------------------------------


def rejected_payee(kind, rules, operator, regulator, registered_payees, crypto_exchange, pay, path):
    """Set up a payee of `kind` and return it with the error and inputs a payout to it raises."""
    if kind == "unregistered":
        return UNREGISTERED, "FundFlowPayeeNotRegistered", {"payee": UNREGISTERED}
    if kind == "zeroAddress":
        return ZERO_ADDRESS, "FundFlowPayeeNotRegistered", {"payee": ZERO_ADDRESS}
    if kind == "blockedCategory":
        inputs = {"payee": crypto_exchange, "category": CATEGORY_CRYPTO_EXCHANGE}
        return crypto_exchange, "FundFlowCategoryBlocked", inputs
    if kind == "frozen":
        payee = registered_payees[2]
        rules.freezePayee(payee, REASON_HASH, sender=regulator)
        return payee, "FundFlowPayeeFrozen", {"payee": payee, "category": CATEGORY_RAW_MATERIALS}

    # The remaining kinds are payees that were paid once and caught by a rule change afterwards.
    payee = registered_payees[0]
    pay(path, payee)
    if kind == "blockedAfterPaid":
        rules.blockCategory(CATEGORY_RESEARCH, REASON_HASH, sender=regulator)
        return payee, "FundFlowCategoryBlocked", {"payee": payee, "category": CATEGORY_RESEARCH}
    if kind == "frozenAfterPaid":
        rules.freezePayee(payee, REASON_HASH, sender=regulator)
        return payee, "FundFlowPayeeFrozen", {"payee": payee, "category": CATEGORY_RESEARCH}
    assert kind == "recategorisedIntoBlocked"
    rules.changePayeeCategory(payee, CATEGORY_CRYPTO_EXCHANGE, sender=operator)
    return payee, "FundFlowCategoryBlocked", {"payee": payee, "category": CATEGORY_CRYPTO_EXCHANGE}


REJECTED_KINDS = [
    "unregistered",
    "zeroAddress",
    "blockedCategory",
    "frozen",
    "blockedAfterPaid",
    "frozenAfterPaid",
    "recategorisedIntoBlocked",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", REJECTED_KINDS)
def test_payout_revertsForRejectedPayee(
    rules, operator, regulator, registered_payees, crypto_exchange, pay, ledger, kind, path
):
    if kind == "zeroAddress" and path in ENTRUSTED_PATHS:
        pytest.skip("a drawdown to the zero address is a self-directed drawdown, not a payout")
    payee, error_name, inputs = rejected_payee(
        kind, rules, operator, regulator, registered_payees, crypto_exchange, pay, path
    )
    before = ledger(payee)

    with reverts_with(getattr(rules, error_name), **inputs):
        pay(path, payee)

    assert ledger(payee) == before


def test_payout_passesAfterRuleLifted(rules, regulator, registered_payees, crypto_exchange, pay):
    """The rejections above come from the rules: lifting each rule lets the same payout through."""
    frozen = registered_payees[2]
    rules.freezePayee(frozen, REASON_HASH, sender=regulator)
    rules.unfreezePayee(frozen, sender=regulator)
    rules.unblockCategory(CATEGORY_CRYPTO_EXCHANGE, sender=regulator)

    for path in PATHS:
        pay(path, frozen, amount=SMALL_PAYOUT_FEN)
        pay(path, crypto_exchange, amount=SMALL_PAYOUT_FEN)


# ---------------------------------------------------------------------------------------------
# Frozen lines
# ---------------------------------------------------------------------------------------------

FREEZES = {
    "bank": (True, False),
    "regulator": (False, True),
    "both": (True, True),
}


def set_line_frozen(
    facility, officer, regulator, line_id, request_id, by_bank, by_regulator, frozen
):
    if by_bank:
        change = facility.freezeLine if frozen else facility.unfreezeLine
        change(request_id(), line_id, sender=officer)
    if by_regulator:
        change = facility.regulatorFreezeLine if frozen else facility.regulatorUnfreezeLine
        change(request_id(), line_id, sender=regulator)


@pytest.mark.parametrize("path", [*PATHS, "selfDirected"])
@pytest.mark.parametrize("frozen_by", sorted(FREEZES))
def test_payout_revertsFromFrozenLine(
    facility,
    officer,
    regulator,
    operator,
    line_id,
    registered_payees,
    request_id,
    pay,
    ledger,
    frozen_by,
    path,
):
    by_bank, by_regulator = FREEZES[frozen_by]
    set_line_frozen(facility, officer, regulator, line_id, request_id, by_bank, by_regulator, True)
    payee = registered_payees[0]
    before = ledger()

    def attempt():
        if path == "selfDirected":
            draw_locked(facility, operator, line_id, request_id, PAYOUT_FEN)
        else:
            pay(path, payee)

    with reverts_with(
        facility.CreditLineFrozen,
        lineId=line_id,
        frozenByBank=by_bank,
        frozenByRegulator=by_regulator,
    ):
        attempt()

    assert ledger() == before
    set_line_frozen(facility, officer, regulator, line_id, request_id, by_bank, by_regulator, False)
    attempt()


def test_batch_revertsWhenOneLineFrozen(
    facility,
    operator,
    officer,
    open_line,
    line_id,
    drawdown_id,
    registered_payees,
    request_id,
    ledger,
):
    other_line = open_line(LIMIT_FEN, RATE_BPS, OTHER_LINE_DAY, MATURITY)
    other_drawdown = draw_locked(facility, operator, other_line, request_id)
    facility.freezeLine(request_id(), line_id, sender=officer)
    before = ledger()
    payouts = [
        (other_drawdown, registered_payees[0], PAYOUT_FEN, INVOICE),
        (drawdown_id, registered_payees[1], PAYOUT_FEN, INVOICE),
    ]

    with reverts_with(
        facility.CreditLineFrozen, lineId=line_id, frozenByBank=True, frozenByRegulator=False
    ):
        facility.payFromLockedBatch(request_id(), payouts, sender=operator)

    assert ledger() == before
    assert facility.lockedBalance(other_drawdown).amount == LOCKED_FEN


def test_unfreezeLine_bankCannotLiftRegulatorFreeze(
    facility, officer, regulator, line_id, request_id
):
    facility.regulatorFreezeLine(request_id(), line_id, sender=regulator)

    with reverts_with(facility.CreditFreezeUnchanged, lineId=line_id, frozen=False):
        facility.unfreezeLine(request_id(), line_id, sender=officer)

    assert facility.lineState(line_id, facility.today()).frozenByRegulator


@pytest.mark.parametrize("account_name", ["officer", "operator", "outsider"])
def test_regulatorFreezeLine_revertsForOthers(
    facility, rules, line_id, request_id, request, account_name
):
    account = request.getfixturevalue(account_name)

    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=account,
        neededRole=rules.REGULATOR_ROLE(),
    ):
        facility.regulatorFreezeLine(request_id(), line_id, sender=account)


def test_regulatorUnfreezeLine_revertsForBank(
    facility, rules, officer, regulator, line_id, request_id
):
    facility.regulatorFreezeLine(request_id(), line_id, sender=regulator)

    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=officer,
        neededRole=rules.REGULATOR_ROLE(),
    ):
        facility.regulatorUnfreezeLine(request_id(), line_id, sender=officer)


def test_repayFromLocked_allowedFromFrozenLine(
    facility, operator, officer, regulator, line_id, drawdown_id, request_id
):
    """Locked money returned as repayment stays inside the bank, so a freeze does not stop it."""
    facility.freezeLine(request_id(), line_id, sender=officer)
    facility.regulatorFreezeLine(request_id(), line_id, sender=regulator)

    facility.repayFromLocked(request_id(), drawdown_id, LOCKED_FEN, sender=operator)

    assert facility.lockedBalance(drawdown_id).amount == 0
    assert facility.lineState(line_id, facility.today()).principal == 0


# ---------------------------------------------------------------------------------------------
# Payout delegates
# ---------------------------------------------------------------------------------------------


def test_payFromLocked_delegatePaysOwnLine(
    facility, token, delegate, line_id, drawdown_id, registered_payees, request_id
):
    payee = registered_payees[0]

    receipt = facility.payFromLocked(
        request_id(), drawdown_id, payee, PAYOUT_FEN, INVOICE, sender=delegate
    )

    payout = receipt.events.filter(facility.PayoutMade)[0]
    assert payout.lineId == line_id
    assert payout.amount == PAYOUT_FEN
    assert token.balanceOf(payee) == PAYOUT_FEN


def test_payFromLocked_revertsForOtherLinesDelegate(
    facility, operator, open_line, delegate, registered_payees, request_id, ledger
):
    other_line = open_line(LIMIT_FEN, RATE_BPS, OTHER_LINE_DAY, MATURITY)
    other_drawdown = draw_locked(facility, operator, other_line, request_id)
    before = ledger()

    with reverts_with(facility.FundFlowNotPayoutDelegate, lineId=other_line, account=delegate):
        facility.payFromLocked(
            request_id(), other_drawdown, registered_payees[0], PAYOUT_FEN, INVOICE, sender=delegate
        )

    assert ledger() == before
    assert facility.lockedBalance(other_drawdown).amount == LOCKED_FEN


def test_batch_revertsWhenDelegateReachesOtherLine(
    facility, operator, open_line, delegate, drawdown_id, registered_payees, request_id, ledger
):
    other_line = open_line(LIMIT_FEN, RATE_BPS, OTHER_LINE_DAY, MATURITY)
    other_drawdown = draw_locked(facility, operator, other_line, request_id)
    before = ledger()
    payouts = [
        (drawdown_id, registered_payees[0], PAYOUT_FEN, INVOICE),
        (other_drawdown, registered_payees[1], PAYOUT_FEN, INVOICE),
    ]

    with reverts_with(facility.FundFlowNotPayoutDelegate, lineId=other_line, account=delegate):
        facility.payFromLockedBatch(request_id(), payouts, sender=delegate)

    assert ledger() == before
    assert facility.lockedBalance(other_drawdown).amount == LOCKED_FEN


@pytest.mark.parametrize("path", ["payFromLocked", "batch"])
def test_payout_revertsForNonDelegate(
    facility, outsider, line_id, drawdown_id, registered_payees, request_id, ledger, path
):
    before = ledger()

    with reverts_with(facility.FundFlowNotPayoutDelegate, lineId=line_id, account=outsider):
        if path == "payFromLocked":
            facility.payFromLocked(
                request_id(),
                drawdown_id,
                registered_payees[0],
                PAYOUT_FEN,
                INVOICE,
                sender=outsider,
            )
        else:
            payouts = [(drawdown_id, registered_payees[0], PAYOUT_FEN, INVOICE)]
            facility.payFromLockedBatch(request_id(), payouts, sender=outsider)

    assert ledger() == before


@pytest.mark.parametrize("path", ["delegate", "delegateBatch"])
def test_payout_revertsForRevokedDelegate(
    facility, operator, delegate, line_id, registered_payees, request_id, pay, ledger, path
):
    pay(path, registered_payees[0])
    receipt = facility.setPayoutDelegate(request_id(), line_id, delegate, False, sender=operator)
    assert not receipt.events[0].allowed
    before = ledger()

    with reverts_with(facility.FundFlowNotPayoutDelegate, lineId=line_id, account=delegate):
        pay(path, registered_payees[0])

    assert ledger() == before


def test_repayFromLocked_revertsForDelegate(facility, delegate, drawdown_id, request_id):
    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=delegate,
        neededRole=facility.OPERATOR_ROLE(),
    ):
        facility.repayFromLocked(request_id(), drawdown_id, PAYOUT_FEN, sender=delegate)


def test_drawdown_revertsForDelegate(facility, delegate, line_id, registered_payees, request_id):
    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=delegate,
        neededRole=facility.OPERATOR_ROLE(),
    ):
        facility.drawdown(
            request_id(), line_id, ENTRUSTED_FEN, registered_payees[0], INVOICE, sender=delegate
        )


@pytest.mark.parametrize("account_name", ["outsider", "borrower", "officer"])
def test_setPayoutDelegate_revertsForNonOperator(
    facility, line_id, request_id, request, account_name
):
    account = request.getfixturevalue(account_name)

    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=account,
        neededRole=facility.OPERATOR_ROLE(),
    ):
        facility.setPayoutDelegate(request_id(), line_id, account, True, sender=account)


# ---------------------------------------------------------------------------------------------
# Self-directed drawdowns, invoices and locked balances
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount",
    [ENTRUSTED_THRESHOLD_FEN, ENTRUSTED_THRESHOLD_FEN + 1, 2 * ENTRUSTED_THRESHOLD_FEN],
    ids=["atThreshold", "justAbove", "twiceThreshold"],
)
def test_selfDirectedDrawdown_revertsFromThreshold(
    facility, operator, line_id, request_id, ledger, amount
):
    before = ledger()

    with reverts_with(
        facility.CreditEntrustedPaymentRequired,
        lineId=line_id,
        amount=amount,
        threshold=ENTRUSTED_THRESHOLD_FEN,
    ):
        facility.drawdown(request_id(), line_id, amount, ZERO_ADDRESS, NO_INVOICE, sender=operator)

    assert ledger() == before


def test_selfDirectedDrawdown_locksJustBelowThreshold(
    facility, token, operator, line_id, request_id
):
    balance_before = token.balanceOf(facility)
    locked_before = facility.totalLocked()

    drawdown = draw_locked(facility, operator, line_id, request_id, ENTRUSTED_THRESHOLD_FEN - 1)

    assert facility.lockedBalance(drawdown) == (line_id, ENTRUSTED_THRESHOLD_FEN - 1)
    assert facility.totalLocked() == locked_before + ENTRUSTED_THRESHOLD_FEN - 1
    assert token.balanceOf(facility) == balance_before


@pytest.mark.parametrize("path", PATHS)
def test_payout_revertsWithoutInvoiceHash(facility, line_id, registered_payees, pay, ledger, path):
    before = ledger()

    with reverts_with(facility.CreditInvoiceHashMissing, lineId=line_id):
        pay(path, registered_payees[0], invoice=NO_INVOICE)

    assert ledger() == before


@pytest.mark.parametrize("sender_name", ["operator", "delegate"])
def test_payFromLocked_revertsAboveLockedBalance(
    facility, drawdown_id, registered_payees, request_id, ledger, request, sender_name
):
    sender = request.getfixturevalue(sender_name)
    before = ledger()

    with reverts_with(
        facility.FundFlowLockedBalanceInsufficient,
        drawdownId=drawdown_id,
        locked=LOCKED_FEN,
        requested=LOCKED_FEN + 1,
    ):
        facility.payFromLocked(
            request_id(), drawdown_id, registered_payees[0], LOCKED_FEN + 1, INVOICE, sender=sender
        )

    assert ledger() == before


def test_batch_revertsWhenPayoutsTogetherExceedLocked(
    facility, operator, drawdown_id, registered_payees, request_id, ledger
):
    share = 30_000_000  # 300,000.00 twice is more than the 500,000.00 locked
    payouts = [
        (drawdown_id, registered_payees[0], share, INVOICE),
        (drawdown_id, registered_payees[1], share, INVOICE),
    ]
    before = ledger()

    with reverts_with(
        facility.FundFlowLockedBalanceInsufficient,
        drawdownId=drawdown_id,
        locked=LOCKED_FEN - share,
        requested=share,
    ):
        facility.payFromLockedBatch(request_id(), payouts, sender=operator)

    assert ledger() == before


def test_repayFromLocked_revertsAboveLockedBalance(
    facility, operator, drawdown_id, request_id, ledger
):
    before = ledger()

    with reverts_with(
        facility.FundFlowLockedBalanceInsufficient,
        drawdownId=drawdown_id,
        locked=LOCKED_FEN,
        requested=LOCKED_FEN + 1,
    ):
        facility.repayFromLocked(request_id(), drawdown_id, LOCKED_FEN + 1, sender=operator)

    assert ledger() == before


def test_payFromLocked_revertsForEntrustedDrawdown(
    facility, operator, line_id, registered_payees, request_id
):
    receipt = facility.drawdown(
        request_id(), line_id, ENTRUSTED_FEN, registered_payees[0], INVOICE, sender=operator
    )
    entrusted_id = receipt.events.filter(facility.LineDrawn)[0].drawdownId

    with reverts_with(facility.FundFlowDrawdownNotLocked, drawdownId=entrusted_id):
        facility.payFromLocked(
            request_id(), entrusted_id, registered_payees[1], PAYOUT_FEN, INVOICE, sender=operator
        )
    with reverts_with(facility.FundFlowDrawdownNotLocked, drawdownId=entrusted_id):
        facility.repayFromLocked(request_id(), entrusted_id, PAYOUT_FEN, sender=operator)


def test_payFromLocked_revertsForUnknownDrawdown(
    facility, operator, drawdown_id, registered_payees, request_id
):
    unknown = drawdown_id + 1000

    with reverts_with(facility.FundFlowDrawdownNotLocked, drawdownId=unknown):
        facility.payFromLocked(
            request_id(), unknown, registered_payees[0], PAYOUT_FEN, INVOICE, sender=operator
        )


def test_payFromLocked_revertsForZeroAmount(
    facility, operator, drawdown_id, registered_payees, request_id
):
    with reverts_with(facility.CreditAmountZero):
        facility.payFromLocked(
            request_id(), drawdown_id, registered_payees[0], 0, INVOICE, sender=operator
        )


def test_payFromLocked_revertsForReusedRequest(
    facility, token, operator, drawdown_id, registered_payees, request_id
):
    reused = request_id()
    facility.payFromLocked(
        reused, drawdown_id, registered_payees[0], PAYOUT_FEN, INVOICE, sender=operator
    )

    with reverts_with(facility.CreditRequestAlreadyUsed, requestId=reused):
        facility.payFromLocked(
            reused, drawdown_id, registered_payees[0], PAYOUT_FEN, INVOICE, sender=operator
        )

    assert token.balanceOf(registered_payees[0]) == PAYOUT_FEN
    assert facility.lockedBalance(drawdown_id).amount == LOCKED_FEN - PAYOUT_FEN


def test_payFromLocked_revertsFromDefaultedLine(
    facility, operator, officer, line_id, drawdown_id, registered_payees, request_id
):
    facility.declareDefault(request_id(), line_id, sender=officer)

    with reverts_with(facility.CreditLineStatusInvalid, lineId=line_id, status=STATUS_DEFAULTED):
        facility.payFromLocked(
            request_id(), drawdown_id, registered_payees[0], PAYOUT_FEN, INVOICE, sender=operator
        )

    facility.repayFromLocked(request_id(), drawdown_id, LOCKED_FEN, sender=operator)
    assert facility.lockedBalance(drawdown_id).amount == 0


# ---------------------------------------------------------------------------------------------
# Liquidity and closing
# ---------------------------------------------------------------------------------------------


def test_withdrawLiquidity_revertsForLockedMoney(
    facility, token, treasury, operator, drawdown_id, registered_payees, request_id
):
    free = facility.liquidity()
    facility.withdrawLiquidity(request_id(), treasury, free, sender=treasury)
    assert token.balanceOf(facility) == LOCKED_FEN

    with reverts_with(facility.CreditInsufficientLiquidity, liquidity=0, requested=1):
        facility.withdrawLiquidity(request_id(), treasury, 1, sender=treasury)

    assert token.balanceOf(facility) == LOCKED_FEN
    facility.payFromLocked(
        request_id(), drawdown_id, registered_payees[0], LOCKED_FEN, INVOICE, sender=operator
    )
    assert token.balanceOf(registered_payees[0]) == LOCKED_FEN
    assert token.balanceOf(facility) == 0


def test_withdrawLiquidity_revertsAboveFreeLiquidity(facility, treasury, drawdown_id, request_id):
    free = facility.liquidity()

    with reverts_with(facility.CreditInsufficientLiquidity, liquidity=free, requested=free + 1):
        facility.withdrawLiquidity(request_id(), treasury, free + 1, sender=treasury)


def test_drawdown_cannotSpendOtherLinesLockedMoney(
    facility, treasury, operator, open_line, drawdown_id, registered_payees, request_id
):
    other_line = open_line(LIMIT_FEN, RATE_BPS, OTHER_LINE_DAY, MATURITY)
    facility.withdrawLiquidity(request_id(), treasury, facility.liquidity(), sender=treasury)

    with reverts_with(facility.CreditInsufficientLiquidity, liquidity=0, requested=ENTRUSTED_FEN):
        facility.drawdown(
            request_id(), other_line, ENTRUSTED_FEN, registered_payees[0], INVOICE, sender=operator
        )
    with reverts_with(facility.CreditInsufficientLiquidity, liquidity=0, requested=PAYOUT_FEN):
        draw_locked(facility, operator, other_line, request_id, PAYOUT_FEN)

    assert facility.lockedBalance(drawdown_id).amount == LOCKED_FEN


def test_closeLine_revertsWithLockedBalance(
    facility, operator, officer, line_id, drawdown_id, request_id
):
    with reverts_with(facility.FundFlowLockedBalanceRemaining, lineId=line_id, locked=LOCKED_FEN):
        facility.closeLine(request_id(), line_id, sender=officer)

    facility.repayFromLocked(request_id(), drawdown_id, LOCKED_FEN, sender=operator)
    facility.closeLine(request_id(), line_id, sender=officer)
    assert facility.lineState(line_id, facility.today()).locked == 0


def test_writeOff_revertsWithLockedBalance(
    facility, operator, officer, line_id, drawdown_id, request_id
):
    """A written-off line could neither pay out nor return locked money, so it would be stuck."""
    facility.declareDefault(request_id(), line_id, sender=officer)

    with reverts_with(facility.FundFlowLockedBalanceRemaining, lineId=line_id, locked=LOCKED_FEN):
        facility.writeOff(request_id(), line_id, sender=officer)

    facility.repayFromLocked(request_id(), drawdown_id, LOCKED_FEN, sender=operator)
    facility.writeOff(request_id(), line_id, sender=officer)


# ---------------------------------------------------------------------------------------------
# What an accepted payout records
# ---------------------------------------------------------------------------------------------


def test_drawdown_entrustedPaysPayeeAndEmitsPayout(
    facility, token, rules, operator, line_id, registered_payees, request_id
):
    payee = registered_payees[1]
    request = request_id()

    receipt = facility.drawdown(request, line_id, ENTRUSTED_FEN, payee, INVOICE, sender=operator)

    drawn = receipt.events.filter(facility.LineDrawn)[0]
    payout = receipt.events.filter(facility.PayoutMade)[0]
    assert payout.lineId == line_id
    assert payout.drawdownId == drawn.drawdownId
    assert payout.payee == payee
    assert payout.requestId == request
    assert payout.category == CATEGORY_EQUIPMENT
    assert payout.invoiceHash == INVOICE
    assert payout.amount == ENTRUSTED_FEN
    assert payout.rulesVersion == rules.rulesVersion()
    assert payout.lockedAfter == 0
    assert token.balanceOf(payee) == ENTRUSTED_FEN
    assert facility.lockedBalance(drawn.drawdownId).amount == 0


def test_payFromLocked_paysPayeeAndEmitsPayout(
    facility, token, rules, operator, line_id, drawdown_id, registered_payees, request_id
):
    payee = registered_payees[2]
    request = request_id()
    balance_before = token.balanceOf(facility)

    receipt = facility.payFromLocked(
        request, drawdown_id, payee, PAYOUT_FEN, INVOICE, sender=operator
    )

    payout = receipt.events.filter(facility.PayoutMade)[0]
    assert payout.lineId == line_id
    assert payout.drawdownId == drawdown_id
    assert payout.payee == to_checksum_address(payee)
    assert payout.requestId == request
    assert payout.category == CATEGORY_RAW_MATERIALS
    assert payout.invoiceHash == INVOICE
    assert payout.amount == PAYOUT_FEN
    assert payout.rulesVersion == rules.rulesVersion()
    assert payout.lockedAfter == LOCKED_FEN - PAYOUT_FEN
    assert token.balanceOf(payee) == PAYOUT_FEN
    assert token.balanceOf(facility) == balance_before - PAYOUT_FEN
    assert facility.totalLocked() == LOCKED_FEN - PAYOUT_FEN
    assert facility.lineState(line_id, facility.today()).locked == LOCKED_FEN - PAYOUT_FEN
