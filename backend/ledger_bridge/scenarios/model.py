"""The scenario format: organisations, payees, pools, lines, dated actions and expectations.

Field checks run in Pydantic; checks across fields are in `validation`.

Amounts are yuan with at most two decimals and are held as integers of fen.
Dates and times are China Standard Time; an action without a time happens
at 10:00.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from ledger_bridge.categories import CATEGORIES, list_codes
from ledger_bridge.chain.contracts import CONTRACT_NAMES, load_abi
from ledger_bridge.core.errors import InvalidValueError
from ledger_bridge.money import parse_amount

CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
DEFAULT_TIME = dt.time(10, 0)
DEFAULT_SETTLEMENT_DAY = 21
MAX_RATE_BPS = 10_000

LineStatus = Literal[
    "None", "Applied", "Approved", "Rejected", "Active", "Defaulted", "WrittenOff", "Closed"
]


def _parse_amount_field(value: object) -> int:
    """Read a YAML amount: a decimal string such as "2500000.00", or a whole number of yuan."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    try:
        return parse_amount(value, allow_zero=True)
    except InvalidValueError as error:
        raise ValueError(
            f"{error.value!r} is not an amount because it {error.reason}; write yuan with at "
            "most two decimals, such as 2500000.00"
        ) from error


def _parse_time_field(value: object) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time; write it as HH:MM, such as 14:30")
    try:
        parsed = dt.time.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{value!r} is not a time; write it as HH:MM, such as 14:30") from error
    if parsed.second or parsed.microsecond or parsed.tzinfo is not None:
        raise ValueError(f"{value!r} has seconds or a zone; write HH:MM in China Standard Time")
    return parsed


def _check_category(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool) and value not in CATEGORIES:
        raise ValueError(f"{value} is not a documented category code; use one of {list_codes()}")
    return value


def _contract_error_names() -> frozenset[str]:
    names = {"Error", "Panic"}
    for contract in CONTRACT_NAMES:
        names.update(item["name"] for item in load_abi(contract) if item["type"] == "error")
    return frozenset(names)


CONTRACT_ERRORS = _contract_error_names()

Amount = Annotated[int, BeforeValidator(_parse_amount_field)]
ClockTime = Annotated[dt.time, BeforeValidator(_parse_time_field)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
CategoryCode = Annotated[int, BeforeValidator(_check_category)]
RateBps = Annotated[int, Field(ge=1, le=MAX_RATE_BPS)]


class Strict(BaseModel):
    """Base of the format's models: unknown keys are errors, so a misspelt key is not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------
# Expectations
# ---------------------------------------------------------------------------------------------


class ExpectedError(Strict):
    """A contract error that the step's operation must fail with, and some of its arguments."""

    name: str
    args: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Arguments to compare, by the error's argument names: amounts as yuan, days as "
            "dates, other values as the bridge shows them."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_name(self) -> ExpectedError:
        if self.name not in CONTRACT_ERRORS:
            raise ValueError(
                f"{self.name!r} is not an error of the contracts; use a custom error name "
                "from the contract interfaces, such as CreditLimitExceeded"
            )
        return self


class ExpectedSettlement(Strict):
    """Interest settled on a settlement day, from the line's InterestSettled events."""

    date: dt.date | None = Field(None, description="Settlement day; the step's date if left out.")
    amount: Amount

    @model_validator(mode="before")
    @classmethod
    def _from_amount(cls, value: Any) -> Any:
        return {"amount": value} if isinstance(value, str | int) else value


class LineFigures(Strict):
    """Figures of one line that a step or the end of the run must show."""

    principal: Amount | None = None
    payoff: Amount | None = Field(
        None,
        description=("On a payoff step the amount paid; elsewhere what a payoff would cost now."),
    )
    limit: Amount | None = None
    available: Amount | None = None
    locked: Amount | None = None
    interest_due: Amount | None = None
    interest_paid: Amount | None = Field(
        None, description="Interest repaid since the line opened, from its Repaid events."
    )
    status: LineStatus | None = None
    history: dict[str, int] | None = Field(
        None, description="Number of events of each name in the auditor's history of the line."
    )

    def line_fields(self) -> list[str]:
        """Return the names of the figures that are set."""
        return [name for name in LineFigures.model_fields if getattr(self, name) is not None]


class StepExpectations(LineFigures):
    """Expectations checked after one action. Line figures refer to the action's line."""

    error: ExpectedError | None = None
    settled: ExpectedSettlement | None = None
    maturing_within: int | None = Field(
        None,
        ge=0,
        le=3650,
        description="The bridge lists the line among lines maturing within this many days.",
    )

    def needs_line(self) -> bool:
        """Return whether a figure refers to the step's line."""
        return (
            bool(self.line_fields())
            or self.settled is not None
            or (self.maturing_within is not None)
        )


class ExpectedPayment(Strict):
    """A refused payout, compared field by field with the report's entry."""

    payee: Label | None = Field(None, description="Payee label; none for a locked drawdown.")
    category: CategoryCode | None = Field(None, description="None when the error names none.")
    rule: str = Field(description="The contract error that rejected the payout.")


class FundFlowExpectations(Strict):
    """Expected figures of the report's fund-flow part, over the scenario's lines."""

    compliant: bool | None = None
    paid: dict[Label, Amount] | None = Field(
        None, description="Total paid out to each payee, by payee label."
    )
    refused: list[ExpectedPayment] | None = None
    returned: Amount | None = Field(
        None, description="Locked money returned as repayment, over all lines."
    )
    locked: Amount | None = Field(None, description="Money still locked, over all lines.")


class InterestSaved(Strict):
    """Interest paid on `compared_with` minus interest paid on `line`."""

    line: Label
    compared_with: Label
    amount: Amount


class EndLineFigures(LineFigures):
    """A line's figures when the run ends, with the report's lists."""

    settlements: list[ExpectedSettlement] | None = None
    payoffs: list[ExpectedSettlement] | None = None


class EndExpectations(Strict):
    """Expectations checked when every action has run."""

    lines: dict[Label, EndLineFigures] = Field(default_factory=dict)
    fund_flow: FundFlowExpectations | None = None
    interest_saved: InterestSaved | None = None


# ---------------------------------------------------------------------------------------------
# Declarations
# ---------------------------------------------------------------------------------------------


class BankOrganisation(Strict):
    """The bank whose facility contains the scenario's lines."""

    name: Label
    facility: Label | None = Field(
        None,
        description=(
            "The facility's name in the deployment file; the first facility if left out. "
            "Checked when the runner deploys; otherwise the bank credential's facility is used."
        ),
    )


class Organisations(Strict):
    bank: BankOrganisation


class Payee(Strict):
    """A payee that credit money may reach, registered with its category code."""

    label: Label
    category: CategoryCode
    registered: dt.date | None = Field(
        None, description="Registration date; the scenario's first date if left out."
    )


class Pool(Strict):
    """A shared credit pool of one industrial cluster."""

    label: Label
    limit: Amount
    created: dt.date


class Line(Strict):
    """A credit line, applied for, approved and opened on its opening date."""

    label: Label
    limit: Amount
    rate_bps: RateBps
    opened: dt.date
    maturity: dt.date
    settlement_day: int = Field(DEFAULT_SETTLEMENT_DAY, ge=1, le=28)
    pool: Label | None = Field(None, description="Pool the line joins when it opens.")

    @model_validator(mode="after")
    def _check_dates(self) -> Line:
        if self.maturity <= self.opened:
            raise ValueError(
                f"maturity {self.maturity} must be after the opening date {self.opened}"
            )
        return self


# ---------------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------------


class Action(Strict):
    """Fields every action has: when it happens and what must hold afterwards."""

    date: dt.date
    time: ClockTime = DEFAULT_TIME
    expect: StepExpectations | None = None

    def moment(self) -> dt.datetime:
        """Return when the action happens, as an aware datetime in China Standard Time."""
        return dt.datetime.combine(self.date, self.time, CHINA_STANDARD_TIME)

    def line_label(self) -> str | None:
        """Return the label of the line the action acts on, if it names one."""
        return getattr(self, "line", None)


class Drawdown(Action):
    action: Literal["drawdown"]
    line: Label
    amount: Amount = Field(gt=0)
    mode: Literal["entrusted", "self_directed"]
    payee: Label | None = None
    invoice: Label | None = Field(None, description="Invoice label; its keccak256 hash is sent.")
    ref: Label | None = Field(None, description="Name for later payouts from its locked balance.")

    @model_validator(mode="after")
    def _check_mode(self) -> Drawdown:
        if self.mode == "entrusted" and (self.payee is None or self.invoice is None):
            raise ValueError("an entrusted drawdown needs payee and invoice")
        if self.mode == "self_directed" and (self.payee is not None or self.invoice is not None):
            raise ValueError(
                "a self_directed drawdown locks the money for the borrower, so it takes no "
                "payee or invoice; pay out later with pay_from_locked"
            )
        return self


class PayFromLocked(Action):
    action: Literal["pay_from_locked"]
    drawdown: Label = Field(description="The ref of a self-directed drawdown.")
    payee: Label
    amount: Amount = Field(gt=0)
    invoice: Label


class ReturnLocked(Action):
    action: Literal["return_locked"]
    drawdown: Label = Field(description="The ref of a self-directed drawdown.")
    amount: Amount = Field(gt=0)


class Repay(Action):
    action: Literal["repay"]
    line: Label
    amount: Amount = Field(gt=0)


class RepayInterest(Action):
    action: Literal["repay_interest"]
    line: Label


class Payoff(Action):
    action: Literal["payoff"]
    line: Label


class ChangeLimit(Action):
    action: Literal["change_limit"]
    line: Label
    limit: Amount = Field(gt=0)
    approval: Literal["solo", "second_officer"] = Field(
        "solo",
        description="solo: one officer within policy; second_officer: proposed, then approved.",
    )


class Renew(Action):
    action: Literal["renew"]
    line: Label
    maturity: dt.date
    rate_bps: RateBps | None = None
    rate_effective: dt.date | None = None
    limit: Amount | None = None

    @model_validator(mode="after")
    def _check_rate(self) -> Renew:
        if (self.rate_bps is None) != (self.rate_effective is None):
            raise ValueError("rate_bps and rate_effective go together; set both or neither")
        return self


class Freeze(Action):
    action: Literal["freeze", "unfreeze"]
    line: Label
    by: Literal["bank", "regulator"] = "bank"


class CategoryBlock(Action):
    action: Literal["block_category", "unblock_category"]
    category: CategoryCode
    reason: Label = Field("scenario replay", description="Reason label; its hash is sent.")


class PoolMembership(Action):
    action: Literal["add_to_pool", "remove_from_pool"]
    line: Label
    pool: Label | None = Field(None, description="The pool to join; only for add_to_pool.")

    @model_validator(mode="after")
    def _check_pool(self) -> PoolMembership:
        if self.action == "add_to_pool" and self.pool is None:
            raise ValueError("add_to_pool needs the pool's label")
        if self.action == "remove_from_pool" and self.pool is not None:
            raise ValueError("remove_from_pool takes no pool; a line is in at most one")
        return self


class Check(Action):
    """No operation: only the expectations, read at this moment."""

    action: Literal["check"]
    line: Label | None = None


AnyAction = Annotated[
    Drawdown
    | PayFromLocked
    | ReturnLocked
    | Repay
    | RepayInterest
    | Payoff
    | ChangeLimit
    | Renew
    | Freeze
    | CategoryBlock
    | PoolMembership
    | Check,
    Field(discriminator="action"),
]


# ---------------------------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------------------------


class Scenario(Strict):
    """One scenario file."""

    name: Label
    description: str = ""
    organisations: Organisations
    payees: list[Payee] = Field(default_factory=list)
    pools: list[Pool] = Field(default_factory=list)
    lines: list[Line] = Field(min_length=1)
    actions: list[AnyAction] = Field(min_length=1)
    expect_at_end: EndExpectations = Field(default_factory=EndExpectations)

    _ACTION_CLASSES: ClassVar[tuple[type[Action], ...]] = (
        Drawdown,
        PayFromLocked,
        ReturnLocked,
        Repay,
        RepayInterest,
        Payoff,
        ChangeLimit,
        Renew,
        Freeze,
        CategoryBlock,
        PoolMembership,
        Check,
    )

    @classmethod
    def action_tags(cls) -> list[str]:
        """Return every value the `action` key may take."""
        tags: list[str] = []
        for action_class in cls._ACTION_CLASSES:
            tags.extend(get_args(action_class.model_fields["action"].annotation))
        return tags

    def first_date(self) -> dt.date:
        """Return the earliest date on which anything happens."""
        dates = [line.opened for line in self.lines] + [pool.created for pool in self.pools]
        dates.append(self.actions[0].date)
        return min(dates)

    def registration_date(self, payee: Payee) -> dt.date:
        return payee.registered or self.first_date()

    def line(self, label: str) -> Line:
        return next(line for line in self.lines if line.label == label)


def setup_moment(day: dt.date) -> dt.datetime:
    """Return when a payee, pool or line declared for `day` is set up: that day at 10:00 CST."""
    return dt.datetime.combine(day, DEFAULT_TIME, CHINA_STANDARD_TIME)
