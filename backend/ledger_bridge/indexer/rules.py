"""The fund-flow rules in force, rebuilt from indexed events.

The rules contract emits an event with the new rules version for every
change of the payee registry, category blocks and payee freezes. Facilities
emit LineFrozen and LineUnfrozen for line freezes and PolicyUpdated for the
entrusted-payment threshold and review policy. Folding these events in chain
order gives the rules in force after any position in the chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# Events of the rules contract, each with the rules version it created.
RULES_CONTRACT_EVENTS = frozenset(
    {
        "PayeeRegistered",
        "PayeeCategoryChanged",
        "PayeeFrozen",
        "PayeeUnfrozen",
        "CategoryBlocked",
        "CategoryUnblocked",
    }
)
# Events of a facility that change what a payout must obey.
FACILITY_RULE_EVENTS = frozenset({"LineFrozen", "LineUnfrozen", "PolicyUpdated"})
RULE_EVENTS = RULES_CONTRACT_EVENTS | FACILITY_RULE_EVENTS


class IndexedEvent(Protocol):
    """The fields of a stored event that the folds read."""

    block_number: int
    transaction_hash: str
    log_index: int
    contract_address: str
    event: str
    line_id: int | None
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RuleSource:
    """The event that set a rule."""

    block_number: int
    transaction_hash: str
    log_index: int


@dataclass(slots=True)
class PayeeRule:
    """A registered payee: its category and whether the regulator froze it."""

    address: str
    category: int
    frozen: bool
    registrar: str
    documents_hash: str
    registered: RuleSource
    # The event that last changed the payee: registration, category change, freeze or unfreeze.
    changed: RuleSource
    freeze_reason_hash: str | None = None


@dataclass(frozen=True, slots=True)
class CategoryBlock:
    """A blocked payee category."""

    category: int
    reason_hash: str
    regulator: str
    since: RuleSource


@dataclass(slots=True)
class LineFreeze:
    """A line that the bank, the regulator or both froze."""

    facility_address: str
    line_id: int
    by_bank: bool
    by_regulator: bool
    since: RuleSource


@dataclass(frozen=True, slots=True)
class FacilityPolicy:
    """A facility's policy as its last PolicyUpdated event set it. Amounts in fen."""

    facility_address: str
    entrusted_threshold: int
    max_limit_change_bps: int
    limit_change_interval_days: int
    cycle_threshold: int
    review_required: bool
    since: RuleSource


@dataclass(slots=True)
class RulesInForce:
    """The rules after the events folded so far."""

    rules_version: int = 0
    payees: dict[str, PayeeRule] = field(default_factory=dict)
    blocked_categories: dict[int, CategoryBlock] = field(default_factory=dict)
    line_freezes: dict[tuple[str, int], LineFreeze] = field(default_factory=dict)
    policies: dict[str, FacilityPolicy] = field(default_factory=dict)
    last_change: RuleSource | None = None

    def apply(self, event: IndexedEvent) -> bool:
        """Fold one event into the rules, and return False for an event that sets no rule."""
        handler = _HANDLERS.get(event.event)
        if handler is None:
            return False
        source = RuleSource(event.block_number, event.transaction_hash, event.log_index)
        handler(self, event, source)
        if event.event in RULES_CONTRACT_EVENTS:
            self.rules_version = int(event.args["rulesVersion"])
        self.last_change = source
        return True

    def line_frozen(self, facility_address: str, line_id: int) -> LineFreeze | None:
        """Return the line's freeze, or None if neither the bank nor the regulator froze it."""
        freeze = self.line_freezes.get((facility_address, line_id))
        if freeze is None or not (freeze.by_bank or freeze.by_regulator):
            return None
        return freeze


def _registered(rules: RulesInForce, event: IndexedEvent, source: RuleSource) -> None:
    args = event.args
    address = str(args["payee"])
    rules.payees[address] = PayeeRule(
        address=address,
        category=int(args["category"]),
        frozen=False,
        registrar=str(args["registrar"]),
        documents_hash=str(args["documentsHash"]),
        registered=source,
        changed=source,
    )


def _category_changed(rules: RulesInForce, event: IndexedEvent, source: RuleSource) -> None:
    payee = rules.payees.get(str(event.args["payee"]))
    if payee is not None:
        payee.category = int(event.args["category"])
        payee.changed = source


def _payee_frozen(frozen: bool) -> Any:
    def set_frozen(rules: RulesInForce, event: IndexedEvent, source: RuleSource) -> None:
        payee = rules.payees.get(str(event.args["payee"]))
        if payee is not None:
            payee.frozen = frozen
            payee.freeze_reason_hash = str(event.args["reasonHash"]) if frozen else None
            payee.changed = source

    return set_frozen


def _category_blocked(rules: RulesInForce, event: IndexedEvent, source: RuleSource) -> None:
    category = int(event.args["category"])
    rules.blocked_categories[category] = CategoryBlock(
        category=category,
        reason_hash=str(event.args["reasonHash"]),
        regulator=str(event.args["regulator"]),
        since=source,
    )


def _category_unblocked(rules: RulesInForce, event: IndexedEvent, source: RuleSource) -> None:
    rules.blocked_categories.pop(int(event.args["category"]), None)


def _line_frozen(frozen: bool) -> Any:
    def set_frozen(rules: RulesInForce, event: IndexedEvent, source: RuleSource) -> None:
        key = (event.contract_address, int(event.args["lineId"]))
        freeze = rules.line_freezes.get(key)
        if freeze is None:
            freeze = LineFreeze(key[0], key[1], by_bank=False, by_regulator=False, since=source)
            rules.line_freezes[key] = freeze
        if bool(event.args["byRegulator"]):
            freeze.by_regulator = frozen
        else:
            freeze.by_bank = frozen
        freeze.since = source
        if not (freeze.by_bank or freeze.by_regulator):
            del rules.line_freezes[key]

    return set_frozen


def _policy_updated(rules: RulesInForce, event: IndexedEvent, source: RuleSource) -> None:
    args = event.args
    rules.policies[event.contract_address] = FacilityPolicy(
        facility_address=event.contract_address,
        entrusted_threshold=int(args["entrustedThreshold"]),
        max_limit_change_bps=int(args["maxLimitChangeBps"]),
        limit_change_interval_days=int(args["limitChangeIntervalDays"]),
        cycle_threshold=int(args["cycleThreshold"]),
        review_required=bool(args["reviewRequired"]),
        since=source,
    )


_HANDLERS: Mapping[str, Any] = {
    "PayeeRegistered": _registered,
    "PayeeCategoryChanged": _category_changed,
    "PayeeFrozen": _payee_frozen(True),
    "PayeeUnfrozen": _payee_frozen(False),
    "CategoryBlocked": _category_blocked,
    "CategoryUnblocked": _category_unblocked,
    "LineFrozen": _line_frozen(True),
    "LineUnfrozen": _line_frozen(False),
    "PolicyUpdated": _policy_updated,
}
