"""The regulator's reports: rules in force, payouts, refused payouts and a verification report.

Rules and payouts are rebuilt from the event index. Refused payouts are the
bridge's own failed operations. The verification report replays the index
and reads the facility contracts at the block the index reaches.
Regulators and auditors may read them; banks may not, because the reports
span every facility.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from hexbytes import HexBytes
from pydantic import BaseModel, Field
from sqlalchemy import and_, or_, select, tuple_
from sqlalchemy.orm import Session

from ledger_bridge.api.chain_access import ChainDep
from ledger_bridge.api.deps import SessionDep, require_roles
from ledger_bridge.api.indexed_events import IndexMarks, PageLimit, event_filter, page_cursor
from ledger_bridge.api.problems import problem_responses
from ledger_bridge.chain.errors import LOCK_REFUSAL_ERROR_PREFIX, LOCK_REFUSAL_ERRORS
from ledger_bridge.chain.runtime import ChainRuntime
from ledger_bridge.core.errors import InvalidRequestError, InvalidValueError, NotFoundError
from ledger_bridge.core.security import Principal, Role
from ledger_bridge.indexer.chain_state import FacilityReader
from ledger_bridge.indexer.errors import IndexNotReadyError
from ledger_bridge.indexer.history import (
    ChainPosition,
    EventFilter,
    events_page,
    index_progress,
    iterate_events,
)
from ledger_bridge.indexer.rules import RULE_EVENTS, RulesInForce, RuleSource
from ledger_bridge.indexer.verification import (
    REPLAYED_EVENTS,
    ZERO_ADDRESS,
    FacilityReconciliation,
    PayoutReplay,
    Violation,
    reconcile_facility,
)
from ledger_bridge.money import AmountOut, parse_address
from ledger_bridge.storage.models import ChainEvent, Operation, OperationState

router = APIRouter(prefix="/v1/regulator", tags=["regulator"])

ReportReader = Annotated[Principal, Depends(require_roles(Role.REGULATOR, Role.AUDITOR))]
Filters = Annotated[EventFilter, Depends(event_filter)]
Cursor = Annotated[ChainPosition | None, Depends(page_cursor)]

_OPERATION_CURSOR = re.compile(r"([0-9T:.+\-]{19,40})\|([0-9a-f]{32})")


# ---------------------------------------------------------------------------------------------
# Response bodies
# ---------------------------------------------------------------------------------------------


class SourceOut(BaseModel):
    """The event that set a rule."""

    block_number: int
    transaction_hash: str
    log_index: int

    @classmethod
    def from_source(cls, source: RuleSource) -> SourceOut:
        """Build the response item from a rule's source event."""
        return cls(
            block_number=source.block_number,
            transaction_hash=source.transaction_hash,
            log_index=source.log_index,
        )


class BlockedCategoryOut(BaseModel):
    """A payee category that credit money may not reach."""

    category: int
    reason_hash: str
    regulator: str
    since: SourceOut


class FrozenPayeeOut(BaseModel):
    """A payee that the regulator froze."""

    payee: str
    category: int
    reason_hash: str | None
    since: SourceOut


class FrozenLineOut(BaseModel):
    """A line frozen by its bank, the regulator or both."""

    facility_address: str
    line_id: str
    by_bank: bool
    by_regulator: bool
    since: SourceOut


class FacilityPolicyOut(BaseModel):
    """A facility's policy as its last PolicyUpdated event set it."""

    facility_address: str
    entrusted_threshold: AmountOut = Field(
        description="Drawdowns of at least this amount must pay a registered payee directly."
    )
    max_limit_change_bps: int
    limit_change_interval_days: int
    cycle_threshold: int = Field(description="Revolving cycles after which a line is flagged.")
    review_required: bool = Field(description="Whether flagged lines wait for an officer.")
    since: SourceOut


class RulesOut(BaseModel):
    """The fund-flow rules in force after a block, rebuilt from the indexed events."""

    as_of_block: int
    rules_version: int = Field(description="The rules contract's version after the last change.")
    last_change: SourceOut | None
    registered_payees: int
    blocked_categories: list[BlockedCategoryOut]
    frozen_payees: list[FrozenPayeeOut]
    frozen_lines: list[FrozenLineOut]
    facility_policies: list[FacilityPolicyOut]


class PayoutOut(BaseModel):
    """A payout of credit money and the rules version it passed."""

    facility_address: str
    line_id: str
    drawdown_id: str
    payment: str = Field(
        description="entrusted (paid by the drawdown) or locked (paid from a locked balance)."
    )
    payee: str
    category: int
    amount: AmountOut
    invoice_hash: str
    rules_version: int
    locked_after: AmountOut = Field(description="Left locked for the drawdown, or 0 if entrusted.")
    block_number: int
    block_hash: str
    block_timestamp: datetime
    transaction_hash: str
    log_index: int
    confirmed: bool


class PayoutsPage(IndexMarks):
    """A page of payouts in chain order."""

    payouts: list[PayoutOut]
    next_cursor: str | None


class RefusedPayoutOut(BaseModel):
    """A request that the fund-flow rules or a line freeze rejected, as the bridge saw it."""

    operation_id: uuid.UUID
    kind: str = Field(examples=["drawdown"])
    facility_address: str | None
    line_id: str | None
    payee: str | None
    category: int | None = Field(description="From the error, when the error names it.")
    rule: str = Field(
        description="The contract error that rejected it.", examples=["FundFlowCategoryBlocked"]
    )
    message: str
    args: dict[str, Any] | list[Any]
    transaction_hash: str | None = Field(
        description="Set only when the reverted transaction was mined."
    )
    block_number: int | None
    refused_at: datetime


class RefusedPayoutsPage(BaseModel):
    """A page of refused payouts, oldest first."""

    refused: list[RefusedPayoutOut]
    next_cursor: str | None


class ViolationOut(BaseModel):
    """An event that broke a rule in force at its position, or a balance that does not add up."""

    rule: str = Field(examples=["category-blocked"])
    detail: str
    facility_address: str
    block_number: int | None
    transaction_hash: str | None
    log_index: int | None
    line_id: str | None
    drawdown_id: str | None
    payee: str | None

    @classmethod
    def from_violation(cls, item: Violation) -> ViolationOut:
        """Build the response item from a violation found by the replay."""
        return cls(
            rule=item.rule,
            detail=item.detail,
            facility_address=item.facility_address,
            block_number=item.block_number,
            transaction_hash=item.transaction_hash,
            log_index=item.log_index,
            line_id=None if item.line_id is None else str(item.line_id),
            drawdown_id=None if item.drawdown_id is None else str(item.drawdown_id),
            payee=item.payee,
        )


class DrawdownMismatchOut(BaseModel):
    """A drawdown whose locked balance on chain differs from the replayed one."""

    drawdown_id: str
    replayed_amount: AmountOut
    chain_amount: AmountOut


class FacilityReconciliationOut(BaseModel):
    """A facility's replayed locked money next to its contract and token balances."""

    facility_address: str
    replayed_total_locked: AmountOut = Field(
        description="Sum of FundsLocked minus payouts from locked balances minus returns."
    )
    total_locked: AmountOut = Field(description="facility.totalLocked() at the report's block.")
    token_balance: AmountOut = Field(description="token.balanceOf(facility) at that block.")
    liquidity: AmountOut | None = Field(description="facility.liquidity(), or null if it reverted.")
    liquidity_error: str | None
    locked_reconciled: bool
    token_balance_reconciled: bool = Field(
        description="Whether balanceOf(facility) equals liquidity() + totalLocked()."
    )
    drawdown_mismatches: list[DrawdownMismatchOut]

    @classmethod
    def from_reconciliation(cls, item: FacilityReconciliation) -> FacilityReconciliationOut:
        """Build the response item from a reconciliation."""
        return cls(
            facility_address=item.facility_address,
            replayed_total_locked=item.replayed_total_locked,
            total_locked=item.balances.total_locked,
            token_balance=item.balances.token_balance,
            liquidity=item.balances.liquidity,
            liquidity_error=item.balances.liquidity_error,
            locked_reconciled=item.locked_reconciled,
            token_balance_reconciled=item.token_balance_reconciled,
            drawdown_mismatches=[
                DrawdownMismatchOut(
                    drawdown_id=str(mismatch.drawdown_id),
                    replayed_amount=mismatch.replayed_amount,
                    chain_amount=mismatch.chain_amount,
                )
                for mismatch in item.drawdown_mismatches
            ],
        )


class VerificationOut(BaseModel):
    """Every payout replayed against the rules in force at its position, and locked money
    reconciled with the contracts, up to one block."""

    compliant: bool = Field(description="No violation, and every facility reconciles.")
    as_of_block: int
    as_of_block_hash: str
    confirmed_through_block: int | None
    rules_version: int
    payouts_checked: int
    locks_checked: int
    violations: list[ViolationOut]
    facilities: list[FacilityReconciliationOut]


# ---------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------


@router.get(
    "/rules",
    summary="Read the fund-flow rules in force, rebuilt from events",
    responses=problem_responses(401, 403, 422, 503),
)
def read_rules_in_force(
    principal: ReportReader,
    session: SessionDep,
    block: Annotated[
        int | None,
        Query(
            ge=0, description="Rules in force after this block, by default the last indexed one."
        ),
    ] = None,
) -> RulesOut:
    """Fold the indexed rule events up to a block into the rules in force after it."""
    through = _indexed_through(session)
    if block is not None and block > through:
        raise InvalidRequestError(
            "block",
            f"is {block}, beyond block {through}, the last one indexed",
            f"Send a block at or below {through}, or leave it out.",
        )
    as_of = through if block is None else block
    rules = RulesInForce()
    scope = ChainEvent.event.in_(sorted(RULE_EVENTS))
    for row in iterate_events(session, scope, EventFilter(), through_block=as_of):
        rules.apply(row)
    return _rules_out(rules, as_of)


@router.get(
    "/payouts",
    summary="List payouts with the rules version each passed",
    responses=problem_responses(401, 403, 404, 422, 503),
)
def list_payouts(
    principal: ReportReader,
    session: SessionDep,
    chain: ChainDep,
    filters: Filters,
    after: Cursor,
    facility: Annotated[str | None, Query(description="Only this facility's payouts.")] = None,
    payee: Annotated[str | None, Query(description="Only payouts to this payee.")] = None,
    limit: PageLimit = 100,
) -> PayoutsPage:
    """Return PayoutMade events in chain order, filtered."""
    conditions = [ChainEvent.event == "PayoutMade"]
    if facility is not None:
        conditions.append(ChainEvent.contract_address == _deployed_facility(chain, facility))
    if payee is not None:
        conditions.append(ChainEvent.args["payee"].as_string() == parse_address(payee))
    page = events_page(session, and_(*conditions), filters, after=after, limit=limit)
    entrusted = _entrusted_keys(session, page.events)
    return PayoutsPage(
        indexed_through_block=page.indexed_through_block,
        confirmed_through_block=page.confirmed_through_block,
        payouts=[_payout_out(row, entrusted) for row in page.events],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/refused-payouts",
    summary="List payout requests that the fund-flow rules or a line freeze rejected",
    responses=problem_responses(401, 403, 422),
)
def list_refused_payouts(
    principal: ReportReader,
    session: SessionDep,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
    limit: PageLimit = 100,
) -> RefusedPayoutsPage:
    """Return the bridge's failed operations whose revert is a FundFlow* or CreditLineFrozen
    error, oldest first. Attempts sent to the chain by other clients are not included.
    """
    error_name = Operation.revert["error"].as_string()
    query = select(Operation).where(
        Operation.state == OperationState.FAILED,
        or_(error_name.like(f"{LOCK_REFUSAL_ERROR_PREFIX}%"), error_name.in_(LOCK_REFUSAL_ERRORS)),
    )
    if cursor is not None:
        created_at, operation_id = _decode_operation_cursor(cursor)
        query = query.where(tuple_(Operation.created_at, Operation.id) > (created_at, operation_id))
    rows = session.scalars(query.order_by(Operation.created_at, Operation.id).limit(limit + 1))
    operations = list(rows)
    page = operations[:limit]
    next_cursor = _encode_operation_cursor(page[-1]) if len(operations) > limit else None
    return RefusedPayoutsPage(
        refused=[_refused_out(item) for item in page], next_cursor=next_cursor
    )


@router.get(
    "/verification",
    summary="Verify every payout against the rules in force and reconcile locked money",
    responses=problem_responses(401, 403, 502, 503),
)
def verify_payouts(
    principal: ReportReader, session: SessionDep, chain: ChainDep
) -> VerificationOut:
    """Replay every indexed payout and lock in chain order against the rules in force at its
    position, then compare each facility's replayed locked money with totalLocked(),
    lockedBalance() and the token balance at the last indexed block. The work grows with
    the number of indexed payouts, locks and rule events.
    """
    progress = index_progress(session)
    through = _indexed_through(session)
    replay = PayoutReplay()
    scope = ChainEvent.event.in_(sorted(REPLAYED_EVENTS))
    replay.apply_all(iterate_events(session, scope, EventFilter(), through_block=through))

    facilities = [
        reconcile_facility(
            FacilityReader(chain.w3, item.address, through),
            item.address,
            replay.locks.get(item.address),
        )
        for item in chain.require_deployment().facilities
    ]
    compliant = not replay.violations and all(
        item.locked_reconciled and item.token_balance_reconciled for item in facilities
    )

    return VerificationOut(
        compliant=compliant,
        as_of_block=through,
        as_of_block_hash=HexBytes(chain.w3.eth.get_block(through)["hash"]).to_0x_hex(),
        confirmed_through_block=progress.confirmed_through_block,
        rules_version=replay.rules.rules_version,
        payouts_checked=replay.payouts_checked,
        locks_checked=replay.locks_checked,
        violations=[ViolationOut.from_violation(item) for item in replay.violations],
        facilities=[FacilityReconciliationOut.from_reconciliation(item) for item in facilities],
    )


# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------


def _indexed_through(session: Session) -> int:
    through = index_progress(session).indexed_through_block
    if through is None:
        raise IndexNotReadyError()
    return through


def _deployed_facility(chain: ChainRuntime, requested: str) -> str:
    deployed = chain.require_deployment().facility(parse_address(requested))
    if deployed is None:
        raise NotFoundError("facility", requested)
    return deployed.address


def _rules_out(rules: RulesInForce, as_of: int) -> RulesOut:
    return RulesOut(
        as_of_block=as_of,
        rules_version=rules.rules_version,
        last_change=None if rules.last_change is None else SourceOut.from_source(rules.last_change),
        registered_payees=len(rules.payees),
        blocked_categories=[
            BlockedCategoryOut(
                category=item.category,
                reason_hash=item.reason_hash,
                regulator=item.regulator,
                since=SourceOut.from_source(item.since),
            )
            for item in sorted(rules.blocked_categories.values(), key=lambda item: item.category)
        ],
        frozen_payees=[
            FrozenPayeeOut(
                payee=item.address,
                category=item.category,
                reason_hash=item.freeze_reason_hash,
                since=SourceOut.from_source(item.changed),
            )
            for item in sorted(rules.payees.values(), key=lambda item: item.address)
            if item.frozen
        ],
        frozen_lines=[
            FrozenLineOut(
                facility_address=item.facility_address,
                line_id=str(item.line_id),
                by_bank=item.by_bank,
                by_regulator=item.by_regulator,
                since=SourceOut.from_source(item.since),
            )
            for _, item in sorted(rules.line_freezes.items())
        ],
        facility_policies=[
            FacilityPolicyOut(
                facility_address=item.facility_address,
                entrusted_threshold=item.entrusted_threshold,
                max_limit_change_bps=item.max_limit_change_bps,
                limit_change_interval_days=item.limit_change_interval_days,
                cycle_threshold=item.cycle_threshold,
                review_required=item.review_required,
                since=SourceOut.from_source(item.since),
            )
            for _, item in sorted(rules.policies.items())
        ],
    )


def _entrusted_keys(session: Session, payouts: Any) -> set[tuple[str, str, str]]:
    """Return (facility, transaction, drawdown id) of the page's payouts that a drawdown paid
    directly: the drawdown's LineDrawn, in the same transaction, names a payee."""
    transactions = {row.transaction_hash for row in payouts}
    if not transactions:
        return set()
    drawn = session.scalars(
        select(ChainEvent).where(
            ChainEvent.transaction_hash.in_(sorted(transactions)),
            ChainEvent.event == "LineDrawn",
        )
    )
    return {
        (row.contract_address, row.transaction_hash, str(row.args["drawdownId"]))
        for row in drawn
        if str(row.args["payee"]) != ZERO_ADDRESS
    }


def _payout_out(row: ChainEvent, entrusted: set[tuple[str, str, str]]) -> PayoutOut:
    args = row.args
    key = (row.contract_address, row.transaction_hash, str(args["drawdownId"]))
    return PayoutOut(
        facility_address=row.contract_address,
        line_id=str(args["lineId"]),
        drawdown_id=str(args["drawdownId"]),
        payment="entrusted" if key in entrusted else "locked",
        payee=str(args["payee"]),
        category=int(args["category"]),
        amount=int(args["amount"]),
        invoice_hash=str(args["invoiceHash"]),
        rules_version=int(args["rulesVersion"]),
        locked_after=int(args["lockedAfter"]),
        block_number=row.block_number,
        block_hash=row.block_hash,
        block_timestamp=row.block_timestamp,
        transaction_hash=row.transaction_hash,
        log_index=row.log_index,
        confirmed=row.confirmed,
    )


def _refused_out(operation: Operation) -> RefusedPayoutOut:
    revert = operation.revert or {}
    args = revert.get("args") or {}
    named = args if isinstance(args, dict) else {}
    payee = named.get("payee") or operation.payload.get("payee")
    category = named.get("category")
    return RefusedPayoutOut(
        operation_id=operation.id,
        kind=operation.kind,
        facility_address=operation.facility_address,
        line_id=None if operation.line_id is None else str(operation.line_id),
        payee=None if payee is None else str(payee),
        category=None if category is None else int(category),
        rule=str(revert.get("error")),
        message=str(revert.get("message", "")),
        args=args,
        transaction_hash=operation.tx_hash if operation.block_number is not None else None,
        block_number=operation.block_number,
        refused_at=operation.updated_at,
    )


class InvalidOperationCursorError(InvalidValueError):
    """A refused-payouts cursor was not produced by this API."""

    title = "Invalid cursor"
    slug = "invalid-cursor"
    expected = "the next_cursor value of the previous page unchanged, or no cursor for page one"


def _encode_operation_cursor(operation: Operation) -> str:
    text = f"{operation.created_at.isoformat()}|{operation.id.hex}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_operation_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    if len(cursor) > 120:
        raise InvalidOperationCursorError(cursor, "is longer than 120 characters")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidOperationCursorError(cursor, "is not base64url text") from error
    match = _OPERATION_CURSOR.fullmatch(text)
    if match is None:
        raise InvalidOperationCursorError(cursor, "does not name an operation")
    try:
        return datetime.fromisoformat(match[1]), uuid.UUID(match[2])
    except ValueError as error:
        raise InvalidOperationCursorError(cursor, "does not name an operation") from error
