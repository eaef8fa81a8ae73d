"""Reference model of a revolving credit line's interest, walked day by day.

The model follows the interest rules alone, so tests can check the ledger contracts against it
to the fen. Those rules:

- Balances are whole fen. Interest accrues exactly, as a ``Fraction`` of a fen, and is rounded
  half-up to the fen only when it settles or is paid off.
- Days are calendar days in China Standard Time (UTC+8). Each day accrues interest on its
  end-of-day balance at the annual rate / 360 (ACT/360), so the day of a drawdown counts and the
  day of a repayment does not.
- At the start of settlement day S of each month, the interest accrued and not yet settled
  through day S-1 is rounded half-up and becomes interest due on day S. Interest due still unpaid
  at the end of day S is overdue from day S+1, and overdue interest accrues interest (compound
  interest) at the same daily rate as principal.
- From the day after maturity, principal and overdue interest accrue at the penalty rate, which is
  the line's rate raised by ``penalty_markup_pct`` percent.
- A repayment pays overdue interest, then interest due, then principal, and only then the running
  period's accrued interest, rounded half-up.

Every figure depends only on the actions and their days, never on how often the model is queried.
"""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

CST = dt.timezone(dt.timedelta(hours=8), "CST")
ONE_DAY = dt.timedelta(days=1)

# A rate in basis points divided by this is the daily rate: 10,000 bps per unit, 360 days a year.
BPS_YEAR_DIVISOR = 10_000 * 360


def cst_date(moment: dt.date) -> dt.date:
    """Return the China Standard Time calendar date of a date or of a timezone-aware datetime."""
    if not isinstance(moment, dt.datetime):
        return moment
    if moment.tzinfo is None:
        raise NaiveDatetimeError(moment)
    return moment.astimezone(CST).date()


def round_half_up(amount: Fraction) -> int:
    """Round a non-negative amount of fen half-up to whole fen."""
    if amount < 0:
        raise ValueError(f"cannot round the negative amount {amount} fen. Pass a value >= 0.")
    return (2 * amount.numerator + amount.denominator) // (2 * amount.denominator)


def format_fen(amount_fen: int) -> str:
    """Format an amount in fen as a yuan decimal string, such as ``"30025375.00"``."""
    return str(Decimal(amount_fen).scaleb(-2))


class LineModelError(Exception):
    """Root of the errors that the reference model raises."""


class NaiveDatetimeError(LineModelError, ValueError):
    def __init__(self, moment: dt.datetime) -> None:
        super().__init__(
            f"datetime {moment.isoformat()} has no timezone, so its CST date is unknown. "
            "Pass an aware datetime or a date."
        )


class InvalidAmountError(LineModelError, ValueError):
    def __init__(self, name: str, value: object) -> None:
        super().__init__(f"{name} must be a positive whole number of fen, got {value!r}")


class DayInPastError(LineModelError, ValueError):
    def __init__(self, day: dt.date, today: dt.date) -> None:
        super().__init__(
            f"day {day} is before the model's current day {today}. Apply actions in date order."
        )


class DrawdownRejectedError(LineModelError, ValueError):
    """Root of the reasons a drawdown is rejected."""


class OverdueInterestError(DrawdownRejectedError):
    def __init__(self, day: dt.date, overdue_fen: int) -> None:
        super().__init__(
            f"drawdown rejected on {day} because interest of {format_fen(overdue_fen)} is "
            "overdue. Repay it first."
        )


class LineMaturedError(DrawdownRejectedError):
    def __init__(self, day: dt.date, maturity: dt.date) -> None:
        super().__init__(
            f"drawdown rejected on {day} because the line matured on {maturity}. Renew it first."
        )


class LimitExceededError(DrawdownRejectedError):
    def __init__(self, amount_fen: int, principal_fen: int, limit_fen: int) -> None:
        available_fen = max(limit_fen - principal_fen, 0)
        super().__init__(
            f"drawdown of {format_fen(amount_fen)} rejected: principal {format_fen(principal_fen)} "
            f"plus the drawdown exceeds the limit {format_fen(limit_fen)}. "
            f"At most {format_fen(available_fen)} can be drawn."
        )


class RepaymentExceedsOwedError(LineModelError, ValueError):
    def __init__(self, day: dt.date, amount_fen: int, owed_fen: int) -> None:
        self.amount_fen = amount_fen
        self.owed_fen = owed_fen
        super().__init__(
            f"repayment of {format_fen(amount_fen)} on {day} exceeds the {format_fen(owed_fen)} "
            f"owed. Repay at most {format_fen(owed_fen)}."
        )


class InvalidTermsError(LineModelError, ValueError):
    """Invalid line terms, such as a settlement day, rate, maturity or rate effective day."""


@dataclass(frozen=True)
class RepaymentAllocation:
    """Split of one repayment in fen, in the order the waterfall applies it."""

    overdue_interest_fen: int
    interest_due_fen: int
    principal_fen: int
    accrued_interest_fen: int

    @property
    def interest_fen(self) -> int:
        return self.overdue_interest_fen + self.interest_due_fen + self.accrued_interest_fen

    @property
    def total_fen(self) -> int:
        return self.interest_fen + self.principal_fen


@dataclass(frozen=True)
class LineState:
    """Balances of a line on ``day``, after that day's settlement and the actions so far."""

    day: dt.date | None
    principal_fen: int
    interest_due_fen: int
    overdue_interest_fen: int
    accrued_exact: Fraction
    total_interest_paid_fen: int
    settlements: tuple[tuple[dt.date, int], ...]


def _check_amount(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidAmountError(name, value)


def _check_rate(rate_bps: int) -> None:
    if isinstance(rate_bps, bool) or not isinstance(rate_bps, int) or rate_bps < 0:
        raise InvalidTermsError(f"rate_bps must be a whole number >= 0, got {rate_bps!r}")


class LineModel:
    """One revolving credit line, with its clock at the last day any method was called for.

    Methods that take a ``day`` first move the clock to it, accruing and settling every day in
    between, and reject a day before the clock. A ``day`` may be a date, taken as a CST date, or
    a timezone-aware datetime, converted to its CST date.
    """

    def __init__(
        self,
        limit_fen: int,
        rate_bps: int,
        maturity: dt.date,
        settlement_day: int = 21,
        penalty_markup_pct: int = 50,
    ) -> None:
        _check_amount("limit_fen", limit_fen)
        _check_rate(rate_bps)
        if not 1 <= settlement_day <= 28:
            raise InvalidTermsError(f"settlement_day must be 1..28, got {settlement_day!r}")
        if penalty_markup_pct < 0:
            raise InvalidTermsError(f"penalty_markup_pct must be >= 0, got {penalty_markup_pct!r}")
        self._limit_fen = limit_fen
        self._maturity = cst_date(maturity)
        self._settlement_day = settlement_day
        self._penalty_markup_pct = penalty_markup_pct
        # (effective day, rate in bps), sorted by day. A rate applies until the next one starts.
        self._rates: list[tuple[dt.date, int]] = [(dt.date.min, rate_bps)]

        self._today: dt.date | None = None
        self._principal_fen = 0
        self._interest_due_fen = 0
        self._due_day = dt.date.min
        self._overdue_fen = 0
        self._accrued = Fraction(0)
        self._interest_paid_fen = 0
        self._settlements: list[tuple[dt.date, int]] = []

    @property
    def today(self) -> dt.date | None:
        """Day of the model's clock, or None before the first call."""
        return self._today

    @property
    def limit_fen(self) -> int:
        return self._limit_fen

    @property
    def maturity(self) -> dt.date:
        return self._maturity

    @property
    def principal_fen(self) -> int:
        return self._principal_fen

    @property
    def interest_due_fen(self) -> int:
        """Interest settled on the last settlement day and not yet paid or overdue."""
        return self._interest_due_fen

    @property
    def overdue_interest_fen(self) -> int:
        return self._overdue_fen

    @property
    def accrued_exact(self) -> Fraction:
        """Unrounded interest in fen accrued in the running period, through the day before today."""
        return self._accrued

    @property
    def total_interest_paid_fen(self) -> int:
        return self._interest_paid_fen

    @property
    def settlements(self) -> tuple[tuple[dt.date, int], ...]:
        """(settlement day, amount in fen) for every settlement of a positive amount."""
        return tuple(self._settlements)

    def rate_bps_on(self, day: dt.date) -> int:
        """Return the line's rate in force on ``day``, before any penalty markup."""
        day = cst_date(day)
        return next(rate for effective, rate in reversed(self._rates) if effective <= day)

    def state(self) -> LineState:
        """Return a snapshot of the balances at the model's current day."""
        return LineState(
            day=self._today,
            principal_fen=self._principal_fen,
            interest_due_fen=self._interest_due_fen,
            overdue_interest_fen=self._overdue_fen,
            accrued_exact=self._accrued,
            total_interest_paid_fen=self._interest_paid_fen,
            settlements=self.settlements,
        )

    def advance_to(self, day: dt.date) -> None:
        """Move the clock to ``day``, accruing each day passed and settling on settlement days."""
        self._move_to(day)

    def draw(self, day: dt.date, amount_fen: int) -> None:
        """Add ``amount_fen`` to principal.

        Raises a DrawdownRejectedError if interest is overdue, ``day`` is after maturity or the
        new principal would exceed the limit.
        """
        day = self._move_to(day)
        _check_amount("amount_fen", amount_fen)
        if self._overdue_fen:
            raise OverdueInterestError(day, self._overdue_fen)
        if day > self._maturity:
            raise LineMaturedError(day, self._maturity)
        if self._principal_fen + amount_fen > self._limit_fen:
            raise LimitExceededError(amount_fen, self._principal_fen, self._limit_fen)

        self._principal_fen += amount_fen

    def repay(self, day: dt.date, amount_fen: int) -> RepaymentAllocation:
        """Apply a repayment to overdue interest, interest due, principal and then accrued interest.

        Raises RepaymentExceedsOwedError, carrying the payoff amount, if ``amount_fen`` exceeds it.
        """
        day = self._move_to(day)
        _check_amount("amount_fen", amount_fen)
        owed_fen = self._payoff_fen()
        if amount_fen > owed_fen:
            raise RepaymentExceedsOwedError(day, amount_fen, owed_fen)

        overdue_paid = min(amount_fen, self._overdue_fen)
        due_paid = min(amount_fen - overdue_paid, self._interest_due_fen)
        principal_paid = min(amount_fen - overdue_paid - due_paid, self._principal_fen)
        accrued_paid = amount_fen - overdue_paid - due_paid - principal_paid

        self._overdue_fen -= overdue_paid
        self._interest_due_fen -= due_paid
        self._principal_fen -= principal_paid
        if amount_fen == owed_fen:
            # A payoff clears the exact accrual, including the part that rounding dropped.
            self._accrued = Fraction(0)
        else:
            # Here accrued_paid is below the rounded accrual, so at least half a fen remains.
            self._accrued -= accrued_paid
        self._interest_paid_fen += overdue_paid + due_paid + accrued_paid

        return RepaymentAllocation(overdue_paid, due_paid, principal_paid, accrued_paid)

    def repay_interest_due(self, day: dt.date) -> int:
        """Repay all settled interest, overdue and due, and return the amount in fen (0 if none)."""
        self._move_to(day)
        amount_fen = self._overdue_fen + self._interest_due_fen
        if amount_fen:
            self.repay(day, amount_fen)
        return amount_fen

    def payoff_amount(self, day: dt.date) -> int:
        """Return the fen that clear the line on ``day``.

        That is principal, overdue interest, interest due and the running period's interest
        through the day before ``day``, rounded half-up.
        """
        self._move_to(day)
        return self._payoff_fen()

    def payoff(self, day: dt.date) -> int:
        """Repay everything owed on ``day`` and return the amount in fen (0 if nothing is owed)."""
        amount_fen = self.payoff_amount(day)
        if amount_fen:
            self.repay(day, amount_fen)
        return amount_fen

    def change_limit(self, day: dt.date, new_limit_fen: int) -> None:
        """Set a new limit. A limit below principal blocks drawdowns but leaves the debt alone."""
        self._move_to(day)
        _check_amount("new_limit_fen", new_limit_fen)
        self._limit_fen = new_limit_fen

    def reprice(self, day: dt.date, new_rate_bps: int, effective: dt.date | None = None) -> None:
        """Apply ``new_rate_bps`` from ``effective`` (default: ``day``) on.

        Days before ``effective`` keep their rates. A change scheduled earlier for ``effective``
        or a later day is replaced, because the latest decision governs from its effective day.
        """
        day = self._move_to(day)
        effective = self._check_reprice(day, new_rate_bps, effective)
        self._rates = [entry for entry in self._rates if entry[0] < effective]
        self._rates.append((effective, new_rate_bps))

    def renew(
        self,
        day: dt.date,
        new_maturity: dt.date,
        new_rate_bps: int | None = None,
        rate_effective: dt.date | None = None,
        new_limit_fen: int | None = None,
    ) -> None:
        """Extend the maturity before the line matures, optionally with a new rate and limit.

        The new rate applies from ``rate_effective`` (default: ``day``) as in ``reprice``. The
        penalty rate then applies only after ``new_maturity``.
        """
        day = self._move_to(day)
        new_maturity = cst_date(new_maturity)
        self._check_renewal(day, new_maturity, new_rate_bps, rate_effective, new_limit_fen)
        if new_rate_bps is not None:
            self.reprice(day, new_rate_bps, rate_effective)
        if new_limit_fen is not None:
            self._limit_fen = new_limit_fen
        self._maturity = new_maturity

    def _check_reprice(self, day: dt.date, new_rate_bps: int, effective: dt.date | None) -> dt.date:
        _check_rate(new_rate_bps)
        effective = day if effective is None else cst_date(effective)
        if effective < day:
            raise InvalidTermsError(
                f"rate effective day {effective} is before {day}, and days already accrued keep "
                f"their rate. Pass an effective day on or after {day}."
            )
        return effective

    def _check_renewal(
        self,
        day: dt.date,
        new_maturity: dt.date,
        new_rate_bps: int | None,
        rate_effective: dt.date | None,
        new_limit_fen: int | None,
    ) -> None:
        if day > self._maturity:
            raise InvalidTermsError(
                f"renewal on {day} rejected because the line matured on {self._maturity}. "
                "A line can be renewed only up to its maturity date."
            )
        if new_maturity <= self._maturity:
            raise InvalidTermsError(
                f"new maturity {new_maturity} must be after the current maturity {self._maturity}"
            )
        if new_rate_bps is not None:
            self._check_reprice(day, new_rate_bps, rate_effective)
        elif rate_effective is not None:
            raise InvalidTermsError(
                "rate_effective was given without new_rate_bps. Pass both or neither."
            )
        if new_limit_fen is not None:
            _check_amount("new_limit_fen", new_limit_fen)

    def _move_to(self, day: dt.date) -> dt.date:
        day = cst_date(day)
        if self._today is None:
            self._today = day
            return day
        if day < self._today:
            raise DayInPastError(day, self._today)

        while self._today < day:
            self._accrue(self._today)
            self._today += ONE_DAY
            self._start_day(self._today)
        return day

    def _daily_rate(self, day: dt.date) -> Fraction:
        daily_rate = Fraction(self.rate_bps_on(day), BPS_YEAR_DIVISOR)
        if day > self._maturity:
            daily_rate *= Fraction(100 + self._penalty_markup_pct, 100)
        return daily_rate

    def _accrue(self, day: dt.date) -> None:
        # Interest due does not accrue on its due day. It compounds from the next day, once overdue.
        balance_fen = self._principal_fen + self._overdue_fen
        self._accrued += balance_fen * self._daily_rate(day)

    def _start_day(self, day: dt.date) -> None:
        if self._interest_due_fen and self._due_day < day:
            self._overdue_fen += self._interest_due_fen
            self._interest_due_fen = 0
        if day.day == self._settlement_day:
            self._settle(day)

    def _settle(self, day: dt.date) -> None:
        # Rounding drops the sub-fen remainder, so an accrual under half a fen settles nothing.
        amount_fen = round_half_up(self._accrued)
        self._accrued = Fraction(0)
        if amount_fen == 0:
            return
        self._interest_due_fen += amount_fen
        self._due_day = day
        self._settlements.append((day, amount_fen))

    def _payoff_fen(self) -> int:
        settled_fen = self._principal_fen + self._overdue_fen + self._interest_due_fen
        return settled_fen + round_half_up(self._accrued)
