"""A line's life on chain: who may move it between which states, and what each move records.

Application, approval or rejection, opening, freezes, default, write-off, recovery and closure.
Every disallowed move reverts with a named error, and no payment revives a line that is written
off or closed.
"""

from datetime import date, timedelta
from enum import IntEnum

import pytest
from conftest import day_number, reverts_with
from eth_utils import keccak
from modelled_line import fen

OPENED = date(2027, 3, 1)
MATURITY = date(2028, 2, 29)
LIMIT_FEN = fen("5,000,000.00")
RATE_BPS = 380
APPLICATION_HASH = keccak(b"application file")
INVOICE_HASH = keccak(b"invoice 1")
ZERO_ADDRESS = "0x" + "00" * 20


class LineStatus(IntEnum):
    """The contract's `LineStatus` enum, in declaration order."""

    NONE = 0
    APPLIED = 1
    APPROVED = 2
    REJECTED = 3
    ACTIVE = 4
    DEFAULTED = 5
    WRITTEN_OFF = 6
    CLOSED = 7


@pytest.fixture
def applied_line(facility, operator, borrower, travel, request_id) -> int:
    travel(OPENED)
    receipt = facility.applyForLine(
        request_id(),
        borrower,
        APPLICATION_HASH,
        LIMIT_FEN,
        RATE_BPS,
        day_number(MATURITY),
        sender=operator,
    )
    return receipt.events[0].lineId


@pytest.fixture
def approved_line(facility, applied_line, officer, request_id) -> int:
    facility.approveLine(request_id(), applied_line, sender=officer)
    return applied_line


@pytest.fixture
def active_line(facility, approved_line, officer, request_id) -> int:
    facility.openLine(request_id(), approved_line, sender=officer)
    return approved_line


@pytest.fixture
def drawn_line(facility, active_line, operator, registered_payees, request_id) -> int:
    """An active line with 2,000,000.00 drawn on the day it opened."""
    facility.drawdown(
        request_id(),
        active_line,
        fen("2,000,000.00"),
        registered_payees[0],
        INVOICE_HASH,
        sender=operator,
    )
    return active_line


@pytest.fixture
def defaulted_line(facility, drawn_line, officer, travel, request_id) -> int:
    """A drawn line declared in default on 2027-05-10, with the April interest overdue."""
    travel(date(2027, 5, 10))
    facility.declareDefault(request_id(), drawn_line, sender=officer)
    return drawn_line


@pytest.fixture
def written_off_line(facility, defaulted_line, officer, request_id) -> int:
    facility.writeOff(request_id(), defaulted_line, sender=officer)
    return defaulted_line


def status_of(facility, line_id: int, day: date = OPENED) -> LineStatus:
    return LineStatus(facility.lineState(line_id, day_number(day)).status)


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------

# (function, arguments after the request id). The role check runs before any argument is read.
OPERATOR_ACTIONS = [
    ("applyForLine", lambda line_id: (ZERO_ADDRESS, APPLICATION_HASH, LIMIT_FEN, RATE_BPS, 0)),
    ("drawdown", lambda line_id: (line_id, 100, ZERO_ADDRESS, INVOICE_HASH)),
    ("repay", lambda line_id: (line_id, 100)),
    ("repayInterest", lambda line_id: (line_id,)),
    ("payoff", lambda line_id: (line_id,)),
    ("recover", lambda line_id: (line_id, 100)),
]
OFFICER_ACTIONS = [
    ("approveLine", lambda line_id: (line_id,)),
    ("rejectLine", lambda line_id: (line_id,)),
    ("openLine", lambda line_id: (line_id,)),
    ("changeLimit", lambda line_id: (line_id, LIMIT_FEN + 1)),
    ("proposeLimitChange", lambda line_id: (line_id, LIMIT_FEN + 1)),
    ("approveLimitChange", lambda line_id: (line_id,)),
    ("renewLine", lambda line_id: (line_id, day_number(MATURITY) + 1, 0, 0, 0)),
    ("freezeLine", lambda line_id: (line_id,)),
    ("unfreezeLine", lambda line_id: (line_id,)),
    ("clearReviewFlag", lambda line_id: (line_id,)),
    ("declareDefault", lambda line_id: (line_id,)),
    ("writeOff", lambda line_id: (line_id,)),
    ("closeLine", lambda line_id: (line_id,)),
]
REGULATOR_ACTIONS = [
    ("regulatorFreezeLine", lambda line_id: (line_id,)),
    ("regulatorUnfreezeLine", lambda line_id: (line_id,)),
]


@pytest.mark.parametrize(
    ("function", "arguments"), OPERATOR_ACTIONS, ids=[a[0] for a in OPERATOR_ACTIONS]
)
@pytest.mark.parametrize("caller", ["officer", "outsider"])
def test_operator_action_reverts_for_other_role(
    facility, active_line, request_id, request, function, arguments, caller
):
    account = request.getfixturevalue(caller)

    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=account,
        neededRole=facility.OPERATOR_ROLE(),
    ):
        getattr(facility, function)(request_id(), *arguments(active_line), sender=account)


@pytest.mark.parametrize(
    ("function", "arguments"), OFFICER_ACTIONS, ids=[a[0] for a in OFFICER_ACTIONS]
)
@pytest.mark.parametrize("caller", ["operator", "outsider"])
def test_officer_action_reverts_for_other_role(
    facility, active_line, request_id, request, function, arguments, caller
):
    account = request.getfixturevalue(caller)

    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=account,
        neededRole=facility.CREDIT_OFFICER_ROLE(),
    ):
        getattr(facility, function)(request_id(), *arguments(active_line), sender=account)


@pytest.mark.parametrize(
    ("function", "arguments"), REGULATOR_ACTIONS, ids=[a[0] for a in REGULATOR_ACTIONS]
)
@pytest.mark.parametrize("caller", ["officer", "operator"])
def test_regulator_action_reverts_for_bank(
    facility, active_line, request_id, request, function, arguments, caller
):
    account = request.getfixturevalue(caller)

    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=account,
        neededRole=facility.REGULATOR_ROLE(),
    ):
        getattr(facility, function)(request_id(), *arguments(active_line), sender=account)


# ---------------------------------------------------------------------------------------------
# Application and request ids
# ---------------------------------------------------------------------------------------------


def test_apply_records_application(facility, operator, borrower, travel, request_id):
    travel(OPENED)
    line_count = facility.lineCount()
    application_request = request_id()

    receipt = facility.applyForLine(
        application_request,
        borrower,
        APPLICATION_HASH,
        LIMIT_FEN,
        RATE_BPS,
        day_number(MATURITY),
        sender=operator,
    )

    [applied] = facility.LineApplied.from_receipt(receipt)
    assert applied.lineId == line_count + 1
    assert applied.requestId == application_request
    assert applied.borrower == borrower.address
    assert applied.applicationHash == APPLICATION_HASH
    assert applied.limit == LIMIT_FEN
    assert applied.rateBps == RATE_BPS
    assert applied.maturityDay == day_number(MATURITY)
    assert applied.submitter == operator.address
    assert facility.lineCount() == line_count + 1
    assert status_of(facility, applied.lineId) == LineStatus.APPLIED


# (borrower or None for the borrower fixture, limit in fen, rate in bps, maturity, error, inputs)
INVALID_APPLICATIONS = [
    (
        ZERO_ADDRESS,
        LIMIT_FEN,
        RATE_BPS,
        MATURITY,
        "CreditBorrowerInvalid",
        {"borrower": ZERO_ADDRESS},
    ),
    (None, 0, RATE_BPS, MATURITY, "CreditAmountZero", {}),
    (None, LIMIT_FEN, 0, MATURITY, "CreditRateInvalid", {"rateBps": 0}),
    (None, LIMIT_FEN, 10_001, MATURITY, "CreditRateInvalid", {"rateBps": 10_001}),
    (
        None,
        LIMIT_FEN,
        RATE_BPS,
        OPENED,
        "CreditMaturityInvalid",
        {"maturityDay": day_number(OPENED), "earliestDay": day_number(OPENED)},
    ),
]


@pytest.mark.parametrize(
    ("applicant", "limit_fen", "rate_bps", "maturity", "error", "inputs"),
    INVALID_APPLICATIONS,
    ids=["zero borrower", "zero limit", "zero rate", "rate above 100%", "maturity today"],
)
def test_apply_rejects_invalid_terms(
    facility,
    operator,
    borrower,
    travel,
    request_id,
    applicant,
    limit_fen,
    rate_bps,
    maturity,
    error,
    inputs,
):
    travel(OPENED)

    with reverts_with(getattr(facility, error), **inputs):
        facility.applyForLine(
            request_id(),
            applicant or borrower,
            APPLICATION_HASH,
            limit_fen,
            rate_bps,
            day_number(maturity),
            sender=operator,
        )


def test_request_id_reuse_reverts(facility, operator, officer, borrower, applied_line, request_id):
    used = request_id()
    facility.approveLine(used, applied_line, sender=officer)

    with reverts_with(facility.CreditRequestAlreadyUsed, requestId=used):
        facility.openLine(used, applied_line, sender=officer)
    with reverts_with(facility.CreditRequestAlreadyUsed, requestId=used):
        facility.applyForLine(
            used,
            borrower,
            APPLICATION_HASH,
            LIMIT_FEN,
            RATE_BPS,
            day_number(MATURITY),
            sender=operator,
        )
    assert facility.isRequestUsed(used)
    assert status_of(facility, applied_line) == LineStatus.APPROVED


def test_resent_drawdown_draws_once(facility, active_line, operator, registered_payees, request_id):
    drawdown_request = request_id()
    facility.drawdown(
        drawdown_request,
        active_line,
        fen("300,000.00"),
        registered_payees[0],
        INVOICE_HASH,
        sender=operator,
    )

    with reverts_with(facility.CreditRequestAlreadyUsed, requestId=drawdown_request):
        facility.drawdown(
            drawdown_request,
            active_line,
            fen("300,000.00"),
            registered_payees[0],
            INVOICE_HASH,
            sender=operator,
        )

    assert facility.lineState(active_line, day_number(OPENED)).principal == fen("300,000.00")


def test_reverted_request_leaves_id_unused(facility, operator, borrower, travel, request_id):
    travel(OPENED)
    retried = request_id()

    with reverts_with(facility.CreditAmountZero):
        facility.applyForLine(
            retried, borrower, APPLICATION_HASH, 0, RATE_BPS, day_number(MATURITY), sender=operator
        )
    assert not facility.isRequestUsed(retried)

    facility.applyForLine(
        retried,
        borrower,
        APPLICATION_HASH,
        LIMIT_FEN,
        RATE_BPS,
        day_number(MATURITY),
        sender=operator,
    )
    assert facility.isRequestUsed(retried)


# ---------------------------------------------------------------------------------------------
# Approval, rejection and opening
# ---------------------------------------------------------------------------------------------


def test_approve_moves_line_to_approved(facility, applied_line, second_officer, request_id):
    approval_request = request_id()

    receipt = facility.approveLine(approval_request, applied_line, sender=second_officer)

    [approved] = facility.LineApproved.from_receipt(receipt)
    assert approved.lineId == applied_line
    assert approved.requestId == approval_request
    assert approved.officer == second_officer.address
    assert status_of(facility, applied_line) == LineStatus.APPROVED


def test_approve_reverts_for_submitter(
    facility, admin, officer, second_officer, borrower, travel, request_id
):
    facility.grantRole(facility.OPERATOR_ROLE(), officer, sender=admin)
    travel(OPENED)
    receipt = facility.applyForLine(
        request_id(),
        borrower,
        APPLICATION_HASH,
        LIMIT_FEN,
        RATE_BPS,
        day_number(MATURITY),
        sender=officer,
    )
    line_id = receipt.events[0].lineId

    with reverts_with(facility.CreditApproverIsSubmitter, lineId=line_id, account=officer):
        facility.approveLine(request_id(), line_id, sender=officer)

    facility.approveLine(request_id(), line_id, sender=second_officer)
    assert status_of(facility, line_id) == LineStatus.APPROVED


@pytest.mark.parametrize(
    ("line_fixture", "status"),
    [
        ("approved_line", LineStatus.APPROVED),
        ("active_line", LineStatus.ACTIVE),
        ("defaulted_line", LineStatus.DEFAULTED),
    ],
)
def test_approve_reverts_unless_applied(
    facility, officer, request_id, request, line_fixture, status
):
    line_id = request.getfixturevalue(line_fixture)

    with reverts_with(facility.CreditLineStatusInvalid, lineId=line_id, status=status):
        facility.approveLine(request_id(), line_id, sender=officer)


def test_approve_reverts_for_unknown_line(facility, officer, request_id):
    with reverts_with(facility.CreditLineNotFound, lineId=999):
        facility.approveLine(request_id(), 999, sender=officer)


@pytest.mark.parametrize("line_fixture", ["applied_line", "approved_line"])
def test_reject_ends_application(facility, officer, request_id, request, line_fixture):
    line_id = request.getfixturevalue(line_fixture)
    rejection_request = request_id()

    receipt = facility.rejectLine(rejection_request, line_id, sender=officer)

    [rejected] = facility.LineRejected.from_receipt(receipt)
    assert (rejected.lineId, rejected.requestId, rejected.officer) == (
        line_id,
        rejection_request,
        officer.address,
    )
    assert status_of(facility, line_id) == LineStatus.REJECTED
    for function in ("approveLine", "openLine", "rejectLine"):
        with reverts_with(
            facility.CreditLineStatusInvalid, lineId=line_id, status=LineStatus.REJECTED
        ):
            getattr(facility, function)(request_id(), line_id, sender=officer)


def test_reject_reverts_for_active_line(facility, active_line, officer, request_id):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=active_line, status=LineStatus.ACTIVE
    ):
        facility.rejectLine(request_id(), active_line, sender=officer)


def test_open_activates_line(facility, approved_line, officer, request_id):
    open_request = request_id()

    receipt = facility.openLine(open_request, approved_line, sender=officer)

    [opened] = facility.LineOpened.from_receipt(receipt)
    assert opened.lineId == approved_line
    assert opened.requestId == open_request
    assert opened.openedDay == day_number(OPENED)
    assert opened.limit == LIMIT_FEN
    assert opened.maturityDay == day_number(MATURITY)
    state = facility.lineState(approved_line, day_number(OPENED))
    assert state.status == LineStatus.ACTIVE
    assert state.available == LIMIT_FEN
    assert state.principal == 0


def test_open_reverts_unless_approved(facility, applied_line, officer, request_id):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=applied_line, status=LineStatus.APPLIED
    ):
        facility.openLine(request_id(), applied_line, sender=officer)


def test_open_reverts_on_maturity_day(facility, operator, officer, borrower, travel, request_id):
    maturity = OPENED + timedelta(days=10)
    travel(OPENED)
    receipt = facility.applyForLine(
        request_id(),
        borrower,
        APPLICATION_HASH,
        LIMIT_FEN,
        RATE_BPS,
        day_number(maturity),
        sender=operator,
    )
    line_id = receipt.events[0].lineId
    facility.approveLine(request_id(), line_id, sender=officer)
    travel(maturity)

    with reverts_with(
        facility.CreditMaturityInvalid,
        maturityDay=day_number(maturity),
        earliestDay=day_number(maturity),
    ):
        facility.openLine(request_id(), line_id, sender=officer)


# ---------------------------------------------------------------------------------------------
# Drawdowns and repayments on an active line
# ---------------------------------------------------------------------------------------------


def test_drawdown_records_balances(facility, active_line, operator, registered_payees, request_id):
    drawdown_request = request_id()

    receipt = facility.drawdown(
        drawdown_request,
        active_line,
        fen("1,200,000.00"),
        registered_payees[1],
        INVOICE_HASH,
        sender=operator,
    )

    [drawn] = facility.LineDrawn.from_receipt(receipt)
    assert drawn.lineId == active_line
    assert drawn.requestId == drawdown_request
    assert drawn.amount == fen("1,200,000.00")
    assert drawn.payee == registered_payees[1]
    assert drawn.principalAfter == fen("1,200,000.00")
    assert drawn.availableAfter == fen("3,800,000.00")
    [payout] = facility.PayoutMade.from_receipt(receipt)
    assert payout.drawdownId == drawn.drawdownId
    assert payout.amount == fen("1,200,000.00")


@pytest.mark.parametrize(
    ("line_fixture", "status"),
    [("applied_line", LineStatus.APPLIED), ("approved_line", LineStatus.APPROVED)],
)
def test_drawdown_reverts_before_opening(
    facility, operator, registered_payees, request_id, request, line_fixture, status
):
    line_id = request.getfixturevalue(line_fixture)

    with reverts_with(facility.CreditLineStatusInvalid, lineId=line_id, status=status):
        facility.drawdown(
            request_id(), line_id, 100, registered_payees[0], INVOICE_HASH, sender=operator
        )


def test_drawdown_reverts_for_zero_amount(
    facility, active_line, operator, registered_payees, request_id
):
    with reverts_with(facility.CreditAmountZero):
        facility.drawdown(
            request_id(), active_line, 0, registered_payees[0], INVOICE_HASH, sender=operator
        )


def test_repay_records_split_and_balances(facility, drawn_line, operator, travel, request_id):
    travel(date(2027, 3, 21))
    repayment_request = request_id()
    due_fen = facility.lineState(drawn_line, day_number(date(2027, 3, 21))).interestDue

    receipt = facility.repay(
        repayment_request, drawn_line, due_fen + fen("500,000.00"), sender=operator
    )

    [repaid] = facility.Repaid.from_receipt(receipt)
    assert repaid.lineId == drawn_line
    assert repaid.requestId == repayment_request
    assert repaid.amount == due_fen + fen("500,000.00")
    assert repaid.overduePaid == 0
    assert repaid.interestDuePaid == due_fen
    assert repaid.principalPaid == fen("500,000.00")
    assert repaid.accruedPaid == 0
    assert repaid.principalAfter == fen("1,500,000.00")
    assert repaid.interestDueAfter == 0
    assert repaid.overdueAfter == 0


# ---------------------------------------------------------------------------------------------
# Freezes
# ---------------------------------------------------------------------------------------------


def test_bank_freeze_blocks_drawdown(
    facility, active_line, officer, operator, registered_payees, request_id
):
    freeze_request = request_id()

    receipt = facility.freezeLine(freeze_request, active_line, sender=officer)

    [frozen] = facility.LineFrozen.from_receipt(receipt)
    assert (frozen.lineId, frozen.requestId, frozen.by, frozen.byRegulator) == (
        active_line,
        freeze_request,
        officer.address,
        False,
    )
    assert facility.lineState(active_line, day_number(OPENED)).frozenByBank
    with reverts_with(
        facility.CreditLineFrozen, lineId=active_line, frozenByBank=True, frozenByRegulator=False
    ):
        facility.drawdown(
            request_id(), active_line, 100, registered_payees[0], INVOICE_HASH, sender=operator
        )

    receipt = facility.unfreezeLine(request_id(), active_line, sender=officer)
    [unfrozen] = facility.LineUnfrozen.from_receipt(receipt)
    assert (unfrozen.lineId, unfrozen.byRegulator) == (active_line, False)
    facility.drawdown(
        request_id(), active_line, 100, registered_payees[0], INVOICE_HASH, sender=operator
    )


def test_freeze_reverts_when_unchanged(facility, active_line, officer, request_id):
    with reverts_with(facility.CreditFreezeUnchanged, lineId=active_line, frozen=False):
        facility.unfreezeLine(request_id(), active_line, sender=officer)

    facility.freezeLine(request_id(), active_line, sender=officer)
    with reverts_with(facility.CreditFreezeUnchanged, lineId=active_line, frozen=True):
        facility.freezeLine(request_id(), active_line, sender=officer)


def test_frozen_line_accepts_repayment(facility, drawn_line, officer, operator, request_id):
    facility.freezeLine(request_id(), drawn_line, sender=officer)

    facility.repay(request_id(), drawn_line, fen("500,000.00"), sender=operator)

    assert facility.lineState(drawn_line, day_number(OPENED)).principal == fen("1,500,000.00")


def test_regulator_freeze_outlasts_bank_unfreeze(
    facility, active_line, officer, operator, regulator, registered_payees, request_id
):
    receipt = facility.regulatorFreezeLine(request_id(), active_line, sender=regulator)
    [frozen] = facility.LineFrozen.from_receipt(receipt)
    assert (frozen.by, frozen.byRegulator) == (regulator.address, True)

    with reverts_with(facility.CreditFreezeUnchanged, lineId=active_line, frozen=False):
        facility.unfreezeLine(request_id(), active_line, sender=officer)
    with reverts_with(
        facility.CreditLineFrozen, lineId=active_line, frozenByBank=False, frozenByRegulator=True
    ):
        facility.drawdown(
            request_id(), active_line, 100, registered_payees[0], INVOICE_HASH, sender=operator
        )

    facility.regulatorUnfreezeLine(request_id(), active_line, sender=regulator)
    facility.drawdown(
        request_id(), active_line, 100, registered_payees[0], INVOICE_HASH, sender=operator
    )


def test_both_freezes_must_be_lifted(
    facility, active_line, officer, operator, regulator, registered_payees, request_id
):
    facility.freezeLine(request_id(), active_line, sender=officer)
    facility.regulatorFreezeLine(request_id(), active_line, sender=regulator)
    facility.unfreezeLine(request_id(), active_line, sender=officer)

    with reverts_with(
        facility.CreditLineFrozen, lineId=active_line, frozenByBank=False, frozenByRegulator=True
    ):
        facility.drawdown(
            request_id(), active_line, 100, registered_payees[0], INVOICE_HASH, sender=operator
        )


def test_freeze_reverts_before_opening(facility, approved_line, officer, request_id):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=approved_line, status=LineStatus.APPROVED
    ):
        facility.freezeLine(request_id(), approved_line, sender=officer)


# ---------------------------------------------------------------------------------------------
# Default, write-off, recovery and closure
# ---------------------------------------------------------------------------------------------


def test_default_records_balances(facility, drawn_line, officer, travel, request_id):
    default_day = date(2027, 5, 10)
    before = facility.lineState(drawn_line, day_number(default_day))
    travel(default_day)
    default_request = request_id()

    receipt = facility.declareDefault(default_request, drawn_line, sender=officer)

    [defaulted] = facility.LineDefaulted.from_receipt(receipt)
    assert defaulted.lineId == drawn_line
    assert defaulted.requestId == default_request
    assert defaulted.principal == fen("2,000,000.00")
    assert defaulted.interestDue == before.interestDue
    assert defaulted.overdueInterest == before.overdueInterest
    assert defaulted.overdueInterest > 0
    assert status_of(facility, drawn_line, default_day) == LineStatus.DEFAULTED


def test_default_reverts_unless_active(facility, approved_line, officer, request_id):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=approved_line, status=LineStatus.APPROVED
    ):
        facility.declareDefault(request_id(), approved_line, sender=officer)


def test_defaulted_line_rejects_drawdown(
    facility, defaulted_line, operator, registered_payees, request_id
):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=defaulted_line, status=LineStatus.DEFAULTED
    ):
        facility.drawdown(
            request_id(), defaulted_line, 100, registered_payees[0], INVOICE_HASH, sender=operator
        )


def test_defaulted_line_accrues_like_model(facility, modelled_line, officer, request_id):
    line = modelled_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    line.draw(date(2027, 3, 2), fen("3,000,000.00"))
    line.move_to(date(2027, 4, 30))
    line.record(facility.declareDefault(request_id(), line.line_id, sender=officer))

    line.repay(date(2027, 6, 3), fen("10,000.00"))

    line.assert_matches_model(date(2027, 9, 1))


def test_payoff_leaves_defaulted_line_defaulted(
    facility, defaulted_line, officer, operator, registered_payees, request_id
):
    day = date(2027, 5, 10)

    facility.payoff(request_id(), defaulted_line, sender=operator)

    state = facility.lineState(defaulted_line, day_number(day))
    assert state.status == LineStatus.DEFAULTED
    assert state.payoffAmount == 0
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=defaulted_line, status=LineStatus.DEFAULTED
    ):
        facility.drawdown(
            request_id(), defaulted_line, 100, registered_payees[0], INVOICE_HASH, sender=operator
        )
    facility.closeLine(request_id(), defaulted_line, sender=officer)
    assert status_of(facility, defaulted_line, day) == LineStatus.CLOSED


def test_write_off_moves_balance_to_outstanding(facility, defaulted_line, officer, request_id):
    day = day_number(date(2027, 5, 10))
    owed_fen = facility.lineState(defaulted_line, day).payoffAmount
    write_off_request = request_id()

    receipt = facility.writeOff(write_off_request, defaulted_line, sender=officer)

    [written_off] = facility.LineWrittenOff.from_receipt(receipt)
    assert written_off.lineId == defaulted_line
    assert written_off.requestId == write_off_request
    assert written_off.amountWrittenOff == owed_fen
    state = facility.lineState(defaulted_line, day + 30)
    assert state.status == LineStatus.WRITTEN_OFF
    assert state.writtenOffOutstanding == owed_fen
    assert state.principal == 0
    assert state.interestDue == 0
    assert state.overdueInterest == 0
    assert state.accruedInterest == 0
    assert state.payoffAmount == 0


def test_write_off_reverts_unless_defaulted(facility, drawn_line, officer, request_id):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=drawn_line, status=LineStatus.ACTIVE
    ):
        facility.writeOff(request_id(), drawn_line, sender=officer)


PAYMENTS = [
    ("repay", lambda line_id: (line_id, 100)),
    ("repayInterest", lambda line_id: (line_id,)),
    ("payoff", lambda line_id: (line_id,)),
    ("drawdown", lambda line_id: (line_id, 100, ZERO_ADDRESS, INVOICE_HASH)),
]


@pytest.mark.parametrize(("function", "arguments"), PAYMENTS, ids=[p[0] for p in PAYMENTS])
def test_written_off_line_rejects_payments(
    facility, written_off_line, operator, request_id, function, arguments
):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=written_off_line, status=LineStatus.WRITTEN_OFF
    ):
        getattr(facility, function)(request_id(), *arguments(written_off_line), sender=operator)


def test_recover_reduces_outstanding(facility, token, written_off_line, operator, request_id):
    outstanding_fen = facility.lineState(
        written_off_line, day_number(date(2027, 5, 10))
    ).writtenOffOutstanding
    facility_balance = token.balanceOf(facility)
    recovery_request = request_id()

    receipt = facility.recover(
        recovery_request, written_off_line, fen("700,000.00"), sender=operator
    )

    [recovered] = facility.RecoveryReceived.from_receipt(receipt)
    assert recovered.lineId == written_off_line
    assert recovered.requestId == recovery_request
    assert recovered.amount == fen("700,000.00")
    assert recovered.outstandingAfter == outstanding_fen - fen("700,000.00")
    state = facility.lineState(written_off_line, day_number(date(2027, 5, 10)))
    assert state.writtenOffOutstanding == outstanding_fen - fen("700,000.00")
    assert state.status == LineStatus.WRITTEN_OFF
    assert token.balanceOf(facility) == facility_balance + fen("700,000.00")


def test_recover_above_outstanding_reverts(facility, written_off_line, operator, request_id):
    outstanding_fen = facility.lineState(
        written_off_line, day_number(date(2027, 5, 10))
    ).writtenOffOutstanding

    with reverts_with(
        facility.CreditRepaymentExceedsOwed,
        lineId=written_off_line,
        amount=outstanding_fen + 1,
        owed=outstanding_fen,
    ):
        facility.recover(request_id(), written_off_line, outstanding_fen + 1, sender=operator)


def test_recover_reverts_unless_written_off(facility, defaulted_line, operator, request_id):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=defaulted_line, status=LineStatus.DEFAULTED
    ):
        facility.recover(request_id(), defaulted_line, 100, sender=operator)


def test_close_after_write_off_keeps_unrecovered(
    facility, written_off_line, officer, operator, request_id
):
    outstanding_fen = facility.lineState(
        written_off_line, day_number(date(2027, 5, 10))
    ).writtenOffOutstanding
    facility.recover(request_id(), written_off_line, fen("100,000.00"), sender=operator)
    close_request = request_id()

    receipt = facility.closeLine(close_request, written_off_line, sender=officer)

    [closed] = facility.LineClosed.from_receipt(receipt)
    assert closed.lineId == written_off_line
    assert closed.requestId == close_request
    assert closed.writtenOffUnrecovered == outstanding_fen - fen("100,000.00")
    assert status_of(facility, written_off_line, date(2027, 5, 10)) == LineStatus.CLOSED


def test_close_reverts_with_balance(facility, drawn_line, officer, travel, request_id):
    day = date(2027, 3, 15)
    owed_fen = facility.lineState(drawn_line, day_number(day)).payoffAmount
    travel(day)

    with reverts_with(facility.CreditBalanceOutstanding, lineId=drawn_line, owed=owed_fen):
        facility.closeLine(request_id(), drawn_line, sender=officer)


def test_close_after_payoff(facility, drawn_line, officer, operator, travel, request_id):
    travel(date(2027, 3, 15))
    facility.payoff(request_id(), drawn_line, sender=operator)

    facility.closeLine(request_id(), drawn_line, sender=officer)

    assert status_of(facility, drawn_line, date(2027, 3, 15)) == LineStatus.CLOSED


def test_close_reverts_before_opening(facility, approved_line, officer, request_id):
    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=approved_line, status=LineStatus.APPROVED
    ):
        facility.closeLine(request_id(), approved_line, sender=officer)


# Every action that names a line, with the role that may call it.
ACTIONS_ON_CLOSED_LINE = [
    ("operator", "repay", lambda line_id: (line_id, 100)),
    ("operator", "repayInterest", lambda line_id: (line_id,)),
    ("operator", "payoff", lambda line_id: (line_id,)),
    ("operator", "recover", lambda line_id: (line_id, 100)),
    ("operator", "drawdown", lambda line_id: (line_id, 100, ZERO_ADDRESS, INVOICE_HASH)),
    ("officer", "approveLine", lambda line_id: (line_id,)),
    ("officer", "rejectLine", lambda line_id: (line_id,)),
    ("officer", "openLine", lambda line_id: (line_id,)),
    ("officer", "changeLimit", lambda line_id: (line_id, LIMIT_FEN + 1)),
    ("officer", "proposeLimitChange", lambda line_id: (line_id, LIMIT_FEN + 1)),
    ("officer", "renewLine", lambda line_id: (line_id, day_number(MATURITY) + 1, 0, 0, 0)),
    ("officer", "freezeLine", lambda line_id: (line_id,)),
    ("officer", "clearReviewFlag", lambda line_id: (line_id,)),
    ("officer", "declareDefault", lambda line_id: (line_id,)),
    ("officer", "writeOff", lambda line_id: (line_id,)),
    ("officer", "closeLine", lambda line_id: (line_id,)),
    ("regulator", "regulatorFreezeLine", lambda line_id: (line_id,)),
]


@pytest.mark.parametrize(
    ("caller", "function", "arguments"),
    ACTIONS_ON_CLOSED_LINE,
    ids=[a[1] for a in ACTIONS_ON_CLOSED_LINE],
)
def test_closed_line_stays_closed(
    facility, written_off_line, officer, request_id, request, caller, function, arguments
):
    facility.closeLine(request_id(), written_off_line, sender=officer)
    account = request.getfixturevalue(caller)

    with reverts_with(
        facility.CreditLineStatusInvalid, lineId=written_off_line, status=LineStatus.CLOSED
    ):
        getattr(facility, function)(request_id(), *arguments(written_off_line), sender=account)
