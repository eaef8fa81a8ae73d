"""A credit line on chain driven in step with the reference interest model.

Every action travels the chain to its CST day, sends the transaction and applies the same action
to `LineModel`, so a test can compare the two to the fen at any point. The model was written from
the interest rules alone, without the contracts, so agreement is evidence for both.
"""

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from conftest import day_number
from eth_utils import keccak

from ledger_bridge.reference.interest import LineModel, round_half_up


def fen(yuan: str) -> int:
    """Convert a yuan figure as printed, such as "30,025,375.00", to fen."""
    amount = Decimal(yuan.replace(",", ""))
    assert amount == amount.quantize(Decimal("0.01")), f"{yuan} has more than two decimals"
    return int(amount * 100)


class ModelledLine:
    """An open line on chain and a `LineModel` with the same terms, fed the same actions.

    Actions take a CST day no earlier than the last one. Drawdowns pay `payee` directly with a
    fresh invoice hash, so amounts above the entrusted threshold are accepted. The settlements and
    repayments the contract emits are collected from every receipt.
    """

    def __init__(
        self,
        facility,
        line_id: int,
        model: LineModel,
        opened: date,
        operator,
        payee: str,
        travel: Callable[[date], None],
        request_id: Callable[[], int],
    ) -> None:
        self.facility = facility
        self.line_id = line_id
        self.model = model
        self.day = opened
        self.operator = operator
        self.payee = payee
        self._travel = travel
        self._request_id = request_id
        self._invoices = 0
        # (settlement day, amount in fen), in the order the contract emitted InterestSettled.
        self.settlements: list[tuple[date, int]] = []
        # The contract emits a settlement only when a transaction brings the line past its day.
        self.updated_through = opened
        self.interest_paid_fen = 0
        self.model.advance_to(opened)

    def move_to(self, day: date) -> None:
        """Make the next transaction happen on `day`, moving the chain to 10:00 CST if it is later."""
        assert day >= self.day, f"cannot act on {day}, the line is already at {self.day}"
        if day > self.day:
            self._travel(day)
            self.day = day

    def draw(self, day: date, amount_fen: int, payee: str | None = None):
        """Draw `amount_fen` as an entrusted payment, on chain and in the model."""
        self.move_to(day)
        self._invoices += 1
        invoice_hash = keccak(text=f"invoice {self.line_id}-{self._invoices}")
        receipt = self.facility.drawdown(
            self._request_id(),
            self.line_id,
            amount_fen,
            payee or self.payee,
            invoice_hash,
            sender=self.operator,
        )
        self.model.draw(day, amount_fen)
        self.record(receipt)
        return receipt

    def repay(self, day: date, amount_fen: int):
        """Repay `amount_fen` and check that the contract split it as the model does."""
        self.move_to(day)
        receipt = self.facility.repay(
            self._request_id(), self.line_id, amount_fen, sender=self.operator
        )
        allocation = self.model.repay(day, amount_fen)
        repaid = self.record(receipt)
        assert repaid == (
            allocation.overdue_interest_fen,
            allocation.interest_due_fen,
            allocation.principal_fen,
            allocation.accrued_interest_fen,
        ), f"repayment of {amount_fen} on {day} split differently from the model"
        return receipt

    def repay_interest(self, day: date) -> int:
        """Repay the overdue interest and the interest due, and return the amount in fen."""
        self.move_to(day)
        receipt = self.facility.repayInterest(
            self._request_id(), self.line_id, sender=self.operator
        )
        expected_fen = self.model.repay_interest_due(day)
        repaid = self.record(receipt)
        assert sum(repaid) == expected_fen, f"interest repaid on {day} differs from the model"
        return expected_fen

    def payoff(self, day: date) -> int:
        """Pay the line off and return the amount in fen."""
        self.move_to(day)
        receipt = self.facility.payoff(self._request_id(), self.line_id, sender=self.operator)
        expected_fen = self.model.payoff(day)
        repaid = self.record(receipt)
        assert sum(repaid) == expected_fen, f"payoff on {day} differs from the model"
        return expected_fen

    def change_limit(self, day: date, limit_fen: int, officer, approver=None):
        """Change the limit by one officer alone, or, with `approver`, by proposal and approval."""
        self.move_to(day)
        if approver is None:
            receipt = self.facility.changeLimit(
                self._request_id(), self.line_id, limit_fen, sender=officer
            )
        else:
            self.facility.proposeLimitChange(
                self._request_id(), self.line_id, limit_fen, sender=officer
            )
            receipt = self.facility.approveLimitChange(
                self._request_id(), self.line_id, sender=approver
            )
        self.model.change_limit(day, limit_fen)
        return receipt

    def renew(
        self,
        day: date,
        officer,
        maturity: date,
        limit_fen: int | None = None,
        rate_bps: int | None = None,
        rate_effective: date | None = None,
    ):
        """Renew the line on chain and in the model.

        None keeps the current limit or rate. A new rate starts on `day` unless `rate_effective`
        is set.
        """
        self.move_to(day)
        effective_day = day_number(rate_effective or day)
        receipt = self.facility.renewLine(
            self._request_id(),
            self.line_id,
            day_number(maturity),
            limit_fen or 0,
            rate_bps or 0,
            effective_day,
            sender=officer,
        )
        self.model.renew(day, maturity, rate_bps, rate_effective if rate_bps else None, limit_fen)
        self.record(receipt)
        return receipt

    def state(self, day: date | None = None):
        """Return the contract's `lineState` on `day` (default: the line's current day)."""
        return self.facility.lineState(self.line_id, day_number(day or self.day))

    def assert_matches_model(self, day: date | None = None) -> None:
        """Assert that the contract's balances on `day` equal the model's to the fen.

        This moves the model's clock to `day`, so later actions must not be earlier than it.
        """
        day = day or self.day
        on_chain = self.state(day)
        self.model.advance_to(day)

        assert on_chain.principal == self.model.principal_fen, f"principal on {day}"
        assert on_chain.interestDue == self.model.interest_due_fen, f"interest due on {day}"
        assert on_chain.overdueInterest == self.model.overdue_interest_fen, f"overdue on {day}"
        assert on_chain.accruedInterest == round_half_up(self.model.accrued_exact), (
            f"accrued on {day}"
        )
        assert on_chain.payoffAmount == self.model.payoff_amount(day), f"payoff amount on {day}"
        assert on_chain.limit == self.model.limit_fen, f"limit on {day}"
        assert on_chain.maturityDay == day_number(self.model.maturity), f"maturity on {day}"
        assert on_chain.rateBps == self.model.rate_bps_on(day), f"rate on {day}"
        emitted = [entry for entry in self.model.settlements if entry[0] <= self.updated_through]
        assert self.settlements == emitted, f"settlements through {self.updated_through}"
        assert self.interest_paid_fen == self.model.total_interest_paid_fen, "interest paid"

    def record(self, receipt) -> tuple[int, int, int, int]:
        """Collect the receipt's settlements and return its repayment split, if it has one.

        Call it for every transaction on the line sent outside this class, such as a default.
        """
        self.updated_through = self.day
        for settled in self.facility.InterestSettled.from_receipt(receipt):
            if settled.lineId == self.line_id:
                settled_on = date.fromordinal(date(1970, 1, 1).toordinal() + settled.settlementDay)
                self.settlements.append((settled_on, settled.amount))

        split = (0, 0, 0, 0)
        for repaid in self.facility.Repaid.from_receipt(receipt):
            split = (
                repaid.overduePaid,
                repaid.interestDuePaid,
                repaid.principalPaid,
                repaid.accruedPaid,
            )
            self.interest_paid_fen += (
                repaid.overduePaid + repaid.interestDuePaid + repaid.accruedPaid
            )
        return split
