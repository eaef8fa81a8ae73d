"""The regulator's verification: every payout replayed against the rules in force at its position.

`PayoutReplay` folds the indexed events in chain order. Rule events update
the rules in force. Each PayoutMade is checked against the rules in force
just before it, which includes earlier events of the same block. The locked
balance of every self-directed drawdown is followed from FundsLocked through
payouts and returns. `reconcile_facility` then compares the replayed
balances with the facility contract at the index's last block.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger_bridge.indexer.chain_state import FacilityBalances, FacilityReader
from ledger_bridge.indexer.rules import RULE_EVENTS, IndexedEvent, RulesInForce

ZERO_ADDRESS = "0x" + "0" * 40
ZERO_HASH = "0x" + "0" * 64

# Events the replay reads besides the rule events.
FLOW_EVENTS = frozenset({"LineDrawn", "FundsLocked", "PayoutMade", "LockedFundsReturned"})
REPLAYED_EVENTS = RULE_EVENTS | FLOW_EVENTS


@dataclass(frozen=True, slots=True)
class Violation:
    """An event that broke a rule, or a balance that does not add up."""

    rule: str
    detail: str
    facility_address: str
    block_number: int | None = None
    transaction_hash: str | None = None
    log_index: int | None = None
    line_id: int | None = None
    drawdown_id: int | None = None
    payee: str | None = None


@dataclass(slots=True)
class LockedDrawdown:
    """The money of one self-directed drawdown still locked, in fen."""

    line_id: int
    amount: int


@dataclass(slots=True)
class _EntrustedDrawdown:
    line_id: int
    amount: int
    payee: str


@dataclass(slots=True)
class FacilityLocks:
    """The replayed locked balances of one facility."""

    drawdowns: dict[int, LockedDrawdown] = field(default_factory=dict)
    total: int = 0


@dataclass(slots=True)
class PayoutReplay:
    """A replay of payouts and locks, fed events in chain order through `apply`."""

    rules: RulesInForce = field(default_factory=RulesInForce)
    locks: dict[str, FacilityLocks] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    payouts_checked: int = 0
    locks_checked: int = 0
    # Entrusted drawdowns whose PayoutMade follows in the same transaction.
    _entrusted: dict[tuple[str, str, int], _EntrustedDrawdown] = field(default_factory=dict)

    def apply(self, event: IndexedEvent) -> None:
        """Fold one event, in chain order."""
        if self.rules.apply(event):
            return
        handler = {
            "LineDrawn": self._drawn,
            "FundsLocked": self._funds_locked,
            "PayoutMade": self._payout_made,
            "LockedFundsReturned": self._returned,
        }.get(event.event)
        if handler is not None:
            handler(event)

    def apply_all(self, events: Iterable[IndexedEvent]) -> None:
        """Fold events in the order given, which must be chain order."""
        for event in events:
            self.apply(event)

    def _drawn(self, event: IndexedEvent) -> None:
        payee = str(event.args["payee"])
        if payee == ZERO_ADDRESS:
            return
        key = (event.contract_address, event.transaction_hash, int(event.args["drawdownId"]))
        self._entrusted[key] = _EntrustedDrawdown(
            line_id=int(event.args["lineId"]), amount=int(event.args["amount"]), payee=payee
        )

    def _funds_locked(self, event: IndexedEvent) -> None:
        self.locks_checked += 1
        args = event.args
        amount = int(args["amount"])
        drawdown_id = int(args["drawdownId"])
        policy = self.rules.policies.get(event.contract_address)
        if policy is not None and amount >= policy.entrusted_threshold:
            self._violate(
                event,
                "lock-above-entrusted-threshold",
                f"{amount} fen were locked, but drawdowns of {policy.entrusted_threshold} fen "
                "or more must pay a registered payee directly",
                drawdown_id=drawdown_id,
            )
        locks = self.locks.setdefault(event.contract_address, FacilityLocks())
        entry = locks.drawdowns.setdefault(drawdown_id, LockedDrawdown(int(args["lineId"]), 0))
        entry.amount += amount
        locks.total += amount
        reported = int(args["totalLockedAfter"])
        if reported != locks.total:
            self._violate(
                event,
                "total-locked-mismatch",
                f"the event reports {reported} fen locked in the facility, "
                f"the replay {locks.total}",
                drawdown_id=drawdown_id,
            )

    def _returned(self, event: IndexedEvent) -> None:
        drawdown_id = int(event.args["drawdownId"])
        self._take_locked(event, drawdown_id, int(event.args["amount"]))

    def _payout_made(self, event: IndexedEvent) -> None:
        self.payouts_checked += 1
        args = event.args
        drawdown_id = int(args["drawdownId"])
        self._check_payee(event)
        self._check_line_not_frozen(event)
        if str(args["invoiceHash"]) == ZERO_HASH:
            self._violate(event, "invoice-hash-missing", "the payout names no invoice hash")
        key = (event.contract_address, event.transaction_hash, drawdown_id)
        entrusted = self._entrusted.pop(key, None)
        if entrusted is not None:
            self._check_entrusted(event, entrusted)
        else:
            self._take_locked(event, drawdown_id, int(args["amount"]))

    def _check_payee(self, event: IndexedEvent) -> None:
        args = event.args
        address = str(args["payee"])
        category = int(args["category"])
        payee = self.rules.payees.get(address)
        if payee is None:
            self._violate(event, "payee-not-registered", f"payee {address} was not registered")
            return
        if payee.frozen:
            self._violate(event, "payee-frozen", f"payee {address} was frozen by the regulator")
        if payee.category != category:
            self._violate(
                event,
                "category-mismatch",
                f"the payout names category {category}, but payee {address} was in category "
                f"{payee.category}",
            )
        if payee.category in self.rules.blocked_categories:
            self._violate(
                event,
                "category-blocked",
                f"payee {address} was in category {payee.category}, which was blocked",
            )
        version = int(args["rulesVersion"])
        if version != self.rules.rules_version:
            self._violate(
                event,
                "rules-version-mismatch",
                f"the payout names rules version {version}, but version "
                f"{self.rules.rules_version} was in force",
            )

    def _check_line_not_frozen(self, event: IndexedEvent) -> None:
        line_id = int(event.args["lineId"])
        freeze = self.rules.line_frozen(event.contract_address, line_id)
        if freeze is not None:
            by = (
                "the bank and the regulator"
                if freeze.by_bank and freeze.by_regulator
                else ("the regulator" if freeze.by_regulator else "the bank")
            )
            self._violate(event, "line-frozen", f"line {line_id} was frozen by {by}")

    def _check_entrusted(self, event: IndexedEvent, drawdown: _EntrustedDrawdown) -> None:
        args = event.args
        amount = int(args["amount"])
        if drawdown.payee != str(args["payee"]) or drawdown.amount != amount:
            self._violate(
                event,
                "entrusted-payment-mismatch",
                f"the drawdown paid {drawdown.amount} fen to {drawdown.payee}, the payout "
                f"{amount} fen to {args['payee']}",
            )
        if drawdown.line_id != int(args["lineId"]):
            self._violate(
                event,
                "entrusted-payment-mismatch",
                f"the drawdown belongs to line {drawdown.line_id}, the payout names line "
                f"{args['lineId']}",
            )

    def _take_locked(self, event: IndexedEvent, drawdown_id: int, amount: int) -> None:
        """Take `amount` from a drawdown's locked balance and check the event's lockedAfter."""
        locks = self.locks.setdefault(event.contract_address, FacilityLocks())
        entry = locks.drawdowns.get(drawdown_id)
        if entry is None:
            self._violate(
                event,
                "drawdown-not-locked",
                f"drawdown {drawdown_id} locked no money in this facility",
                drawdown_id=drawdown_id,
            )
            return
        if amount > entry.amount:
            self._violate(
                event,
                "locked-balance-exceeded",
                f"{amount} fen left drawdown {drawdown_id}, which held {entry.amount} fen",
                drawdown_id=drawdown_id,
            )
            amount = entry.amount
        if entry.line_id != int(event.args["lineId"]):
            self._violate(
                event,
                "drawdown-line-mismatch",
                f"drawdown {drawdown_id} belongs to line {entry.line_id}",
                drawdown_id=drawdown_id,
            )
        entry.amount -= amount
        locks.total -= amount
        reported = int(event.args["lockedAfter"])
        if reported != entry.amount:
            self._violate(
                event,
                "locked-balance-mismatch",
                f"the event reports {reported} fen left locked for drawdown {drawdown_id}, "
                f"the replay {entry.amount}",
                drawdown_id=drawdown_id,
            )
        if entry.amount == 0:
            del locks.drawdowns[drawdown_id]

    def _violate(
        self, event: IndexedEvent, rule: str, detail: str, *, drawdown_id: int | None = None
    ) -> None:
        args = event.args
        if drawdown_id is None and "drawdownId" in args:
            drawdown_id = int(args["drawdownId"])
        payee = args.get("payee")
        self.violations.append(
            Violation(
                rule=rule,
                detail=detail,
                facility_address=event.contract_address,
                block_number=event.block_number,
                transaction_hash=event.transaction_hash,
                log_index=event.log_index,
                line_id=event.line_id,
                drawdown_id=drawdown_id,
                payee=None if payee is None else str(payee),
            )
        )


@dataclass(frozen=True, slots=True)
class DrawdownMismatch:
    """A drawdown whose locked balance on chain differs from the replay."""

    drawdown_id: int
    replayed_amount: int
    chain_amount: int


@dataclass(frozen=True, slots=True)
class FacilityReconciliation:
    """The replayed locked balances of a facility next to the contract's, at one block."""

    facility_address: str
    replayed_total_locked: int
    balances: FacilityBalances
    drawdown_mismatches: list[DrawdownMismatch]

    @property
    def locked_reconciled(self) -> bool:
        """Whether the replayed total and every replayed drawdown match the contract."""
        return (
            self.replayed_total_locked == self.balances.total_locked
            and not self.drawdown_mismatches
        )

    @property
    def token_balance_reconciled(self) -> bool:
        """Whether the facility's token balance equals its free liquidity plus locked money."""
        liquidity = self.balances.liquidity
        return (
            liquidity is not None
            and self.balances.token_balance == liquidity + self.balances.total_locked
        )


def reconcile_facility(
    reader: FacilityReader, facility_address: str, locks: FacilityLocks | None
) -> FacilityReconciliation:
    """Compare a facility's replayed locked balances with the contract at the reader's block.

    Every drawdown with money left in the replay is read with
    `lockedBalance`, so the cost grows with the number of open locked drawdowns.
    """
    locks = locks or FacilityLocks()
    mismatches = []
    for drawdown_id, entry in sorted(locks.drawdowns.items()):
        _, chain_amount = reader.locked_balance(drawdown_id)
        if chain_amount != entry.amount:
            mismatches.append(DrawdownMismatch(drawdown_id, entry.amount, chain_amount))
    return FacilityReconciliation(
        facility_address=facility_address,
        replayed_total_locked=locks.total,
        balances=reader.balances(),
        drawdown_mismatches=mismatches,
    )
