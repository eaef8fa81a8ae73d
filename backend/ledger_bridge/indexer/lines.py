"""A credit line's state rebuilt from its events alone.

`apply_line_event` folds one CreditFacility event into a `LineRecord`. The
indexer uses it to keep the indexed_lines table current, and the auditor's
check uses it on logs read from the chain, so both sides follow the same rules.

Events carry the balances after each change, so principal, limit, maturity,
flags, cycles and locked money follow exactly. Interest does not: it settles
lazily on chain, without an event, so the interest figures here are those of
the line's last event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

# China Standard Time is UTC+8 all year, and the contracts count days from 1970-01-01 in it.
CST_OFFSET_SECONDS = 8 * 3600
SECONDS_PER_DAY = 86_400

# Statuses in which a line accrues interest, as the contract's `_accrues` defines them.
ACCRUING_STATUSES = frozenset({"Active", "Defaulted"})


@dataclass(slots=True)
class LineRecord:
    """A line's state after the events applied so far, in fen and CST day numbers."""

    facility_address: str
    line_id: int
    borrower: str | None = None
    status: str = "None"
    credit_limit: int = 0
    rate_bps: int = 0
    next_rate_bps: int = 0
    next_rate_day: int = 0
    maturity_day: int = 0
    opened_day: int | None = None
    principal: int = 0
    interest_due: int = 0
    overdue_interest: int = 0
    locked: int = 0
    written_off_outstanding: int = 0
    pool_id: int = 0
    frozen_by_bank: bool = False
    frozen_by_regulator: bool = False
    review_flagged: bool = False
    revolving_cycles: int = 0
    interest_may_be_owed: bool = False
    # The drawdown id of the line's last entrusted drawdown, whose PayoutMade event follows
    # in the same transaction and, unlike a payout from locked money, leaves `locked` alone.
    entrusted_drawdown_id: int | None = None
    last_block_number: int = 0
    last_log_index: int = 0
    event_count: int = 0

    def rate_on(self, day: int) -> int:
        """Return the annual rate in basis points that applies on `day`."""
        if self.next_rate_day and day >= self.next_rate_day:
            return self.next_rate_bps
        return self.rate_bps


LINE_RECORD_FIELDS = tuple(item.name for item in fields(LineRecord))


def cst_day(moment: datetime) -> int:
    """Return the China Standard Time day number of an aware datetime, as the contracts count."""
    return (int(moment.timestamp()) + CST_OFFSET_SECONDS) // SECONDS_PER_DAY


def apply_line_event(
    record: LineRecord,
    event: str,
    args: Mapping[str, Any],
    *,
    day: int,
    block_number: int,
    log_index: int,
) -> None:
    """Apply one event of the line, emitted on CST day `day`, to `record`.

    `args` are the decoded arguments as the index stores them: integers as
    decimal strings, booleans as booleans. Events that do not change the
    line's state, such as PayoutDelegateSet, only count.
    """
    handler = _HANDLERS.get(event)
    if handler is not None:
        handler(record, args, day)
    record.last_block_number = block_number
    record.last_log_index = log_index
    record.event_count += 1


def _applied(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.borrower = str(args["borrower"])
    record.status = "Applied"
    record.credit_limit = int(args["limit"])
    record.rate_bps = int(args["rateBps"])
    record.maturity_day = int(args["maturityDay"])


def _status(status: str) -> Callable[[LineRecord, Mapping[str, Any], int], None]:
    def set_status(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
        record.status = status

    return set_status


def _opened(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.status = "Active"
    record.opened_day = int(args["openedDay"])
    record.credit_limit = int(args["limit"])
    record.maturity_day = int(args["maturityDay"])


def _drawn(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.principal = int(args["principalAfter"])
    record.interest_may_be_owed = True
    if int(str(args["payee"]), 16) != 0:
        record.entrusted_drawdown_id = int(args["drawdownId"])


def _funds_locked(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.locked += int(args["amount"])


def _payout_made(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    if int(args["drawdownId"]) == record.entrusted_drawdown_id:
        return
    record.locked -= int(args["amount"])


def _locked_funds_returned(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.locked -= int(args["amount"])


def _repaid(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.principal = int(args["principalAfter"])
    record.interest_due = int(args["interestDueAfter"])
    record.overdue_interest = int(args["overdueAfter"])
    # Only a payoff pays the running period's accrued interest. After a payoff that left nothing
    # owed, the line accrues nothing until its next drawdown. Other cases stay possible.
    settled_everything = record.principal == 0 and record.interest_due == 0
    if settled_everything and record.overdue_interest == 0 and int(args["accruedPaid"]) > 0:
        record.interest_may_be_owed = False


def _interest_settled(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.interest_due = int(args["interestDueAfter"])
    record.overdue_interest = int(args["overdueAfter"])


def _interest_overdue(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    # All interest due moves to overdue at once (InterestAccrual.step).
    record.interest_due = 0
    record.overdue_interest = int(args["overdueAfter"])


def _cycle_completed(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.revolving_cycles = int(args["revolvingCycles"])
    # The contract sets the flag when the threshold is passed and never clears it here.
    record.review_flagged = record.review_flagged or bool(args["reviewFlagged"])


def _review_cleared(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.review_flagged = False
    record.revolving_cycles = int(args["revolvingCycles"])


def _limit_changed(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.credit_limit = int(args["limit"])


def _renewed(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.maturity_day = int(args["maturityDay"])
    record.credit_limit = int(args["limit"])
    _apply_due_rate(record, day)
    rate_bps = int(args["rateBps"])
    # NOTE: a renewal that keeps the rate emits the current rate, which cannot be distinguished
    # from an explicit change to the same rate. Both are read as "no change", so the rare
    # explicit one that replaces a pending change leaves that pending change here.
    if rate_bps == record.rate_bps:
        return
    effective_day = int(args["rateEffectiveDay"])
    if effective_day <= day:
        record.rate_bps = rate_bps
        record.next_rate_bps = 0
        record.next_rate_day = 0
    else:
        record.next_rate_bps = rate_bps
        record.next_rate_day = effective_day


def _apply_due_rate(record: LineRecord, day: int) -> None:
    if record.next_rate_day and day >= record.next_rate_day:
        record.rate_bps = record.next_rate_bps
        record.next_rate_bps = 0
        record.next_rate_day = 0


def _frozen(frozen: bool) -> Callable[[LineRecord, Mapping[str, Any], int], None]:
    def set_frozen(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
        if bool(args["byRegulator"]):
            record.frozen_by_regulator = frozen
        else:
            record.frozen_by_bank = frozen

    return set_frozen


def _defaulted(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.status = "Defaulted"
    record.principal = int(args["principal"])
    record.interest_due = int(args["interestDue"])
    record.overdue_interest = int(args["overdueInterest"])


def _written_off(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.status = "WrittenOff"
    record.written_off_outstanding = int(args["amountWrittenOff"])
    record.principal = 0
    record.interest_due = 0
    record.overdue_interest = 0
    record.interest_may_be_owed = False


def _recovered(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.written_off_outstanding = int(args["outstandingAfter"])


def _closed(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.status = "Closed"
    record.interest_may_be_owed = False


def _pool_member_added(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.pool_id = int(args["poolId"])


def _pool_member_removed(record: LineRecord, args: Mapping[str, Any], day: int) -> None:
    record.pool_id = 0


_HANDLERS: Mapping[str, Callable[[LineRecord, Mapping[str, Any], int], None]] = {
    "LineApplied": _applied,
    "LineApproved": _status("Approved"),
    "LineRejected": _status("Rejected"),
    "LineOpened": _opened,
    "LineDrawn": _drawn,
    "FundsLocked": _funds_locked,
    "PayoutMade": _payout_made,
    "LockedFundsReturned": _locked_funds_returned,
    "Repaid": _repaid,
    "InterestSettled": _interest_settled,
    "InterestOverdue": _interest_overdue,
    "RevolvingCycleCompleted": _cycle_completed,
    "ReviewFlagCleared": _review_cleared,
    "LimitChanged": _limit_changed,
    "LineRenewed": _renewed,
    "LineFrozen": _frozen(True),
    "LineUnfrozen": _frozen(False),
    "LineDefaulted": _defaulted,
    "LineWrittenOff": _written_off,
    "RecoveryReceived": _recovered,
    "LineClosed": _closed,
    "PoolMemberAdded": _pool_member_added,
    "PoolMemberRemoved": _pool_member_removed,
}
