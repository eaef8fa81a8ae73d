"""The payout replay behind the verification report: rule by rule on made-up event sequences,
then on an index of the session's chain whose rows were changed after indexing.

Made-up sequences show violations that the contracts never let happen, so
each rule of the replay is seen to fire once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from ledger_bridge.chain.deployment import Deployment
from ledger_bridge.indexer.chain_state import FacilityReader
from ledger_bridge.indexer.history import EventFilter, iterate_events
from ledger_bridge.indexer.store import load_checkpoint
from ledger_bridge.indexer.verification import (
    REPLAYED_EVENTS,
    ZERO_ADDRESS,
    PayoutReplay,
    reconcile_facility,
)
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.models import ChainEvent

from .indexer_support import catch_up, new_indexer, shared_chain_actor

FACILITY = "0x00000000000000000000000000000000000000F1"
RULES = "0x00000000000000000000000000000000000000E1"
PAYEE = "0x00000000000000000000000000000000000000A1"
REGULATOR = "0x00000000000000000000000000000000000000B1"
INVOICE = "0x" + "ab" * 32
LINE = 7


@dataclass
class FakeEvent:
    """An indexed event as the replay reads it."""

    block_number: int
    log_index: int
    event: str
    args: dict[str, Any]
    contract_address: str = FACILITY
    transaction_hash: str = ""
    line_id: int | None = None

    def __post_init__(self) -> None:
        self.transaction_hash = self.transaction_hash or f"0x{self.block_number:064x}"
        if "lineId" in self.args:
            self.line_id = int(self.args["lineId"])


@dataclass
class Chain:
    """Builds a made-up event sequence, one event per call, in chain order."""

    events: list[FakeEvent] = field(default_factory=list)
    version: int = 0
    block: int = 100

    def add(
        self, event: str, args: dict[str, Any], *, contract: str = FACILITY, same_tx: bool = False
    ) -> None:
        if not same_tx:
            self.block += 1
        log_index = sum(1 for item in self.events if item.block_number == self.block)
        self.events.append(FakeEvent(self.block, log_index, event, args, contract))

    def rule(self, event: str, **args: Any) -> None:
        self.version += 1
        self.add(event, {**args, "rulesVersion": str(self.version)}, contract=RULES)

    def policy(self, threshold: int = 1_000) -> None:
        self.add(
            "PolicyUpdated",
            {
                "entrustedThreshold": str(threshold),
                "maxLimitChangeBps": "2200",
                "limitChangeIntervalDays": "90",
                "cycleThreshold": "8",
                "reviewRequired": True,
            },
        )

    def register(self, category: int = 101, payee: str = PAYEE) -> None:
        self.rule(
            "PayeeRegistered",
            payee=payee,
            category=str(category),
            documentsHash=INVOICE,
            registrar=REGULATOR,
        )

    def lock(self, drawdown: int, amount: int, total_after: int) -> None:
        self.add(
            "LineDrawn",
            {
                "lineId": str(LINE),
                "drawdownId": str(drawdown),
                "amount": str(amount),
                "payee": ZERO_ADDRESS,
            },
        )
        self.add(
            "FundsLocked",
            {
                "lineId": str(LINE),
                "drawdownId": str(drawdown),
                "amount": str(amount),
                "totalLockedAfter": str(total_after),
            },
            same_tx=True,
        )

    def payout(
        self,
        drawdown: int,
        amount: int,
        locked_after: int,
        *,
        category: int = 101,
        version: int | None = None,
        payee: str = PAYEE,
        same_tx: bool = False,
    ) -> None:
        self.add(
            "PayoutMade",
            {
                "lineId": str(LINE),
                "drawdownId": str(drawdown),
                "payee": payee,
                "requestId": "1",
                "category": str(category),
                "invoiceHash": INVOICE,
                "amount": str(amount),
                "rulesVersion": str(self.version if version is None else version),
                "lockedAfter": str(locked_after),
            },
            same_tx=same_tx,
        )

    def entrusted(self, drawdown: int, amount: int, *, paid: int | None = None) -> None:
        self.add(
            "LineDrawn",
            {
                "lineId": str(LINE),
                "drawdownId": str(drawdown),
                "amount": str(amount),
                "payee": PAYEE,
            },
        )
        self.payout(drawdown, amount if paid is None else paid, 0, same_tx=True)


def violations_of(chain: Chain) -> list[str]:
    replay = PayoutReplay()
    replay.apply_all(chain.events)
    return [item.rule for item in replay.violations]


def lawful_start() -> Chain:
    chain = Chain()
    chain.policy()
    chain.register()
    return chain


def test_lawful_payouts_have_no_violation() -> None:
    chain = lawful_start()
    chain.lock(drawdown=1, amount=500, total_after=500)
    chain.payout(1, 200, 300)
    chain.entrusted(drawdown=2, amount=5_000)
    chain.add(
        "LockedFundsReturned",
        {
            "lineId": str(LINE),
            "drawdownId": "1",
            "requestId": "2",
            "amount": "300",
            "lockedAfter": "0",
        },
    )

    replay = PayoutReplay()
    replay.apply_all(chain.events)

    assert replay.violations == []
    assert replay.payouts_checked == 2
    assert replay.locks.get(FACILITY) is not None
    assert replay.locks[FACILITY].total == 0


def blocked_before_payout(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.rule("CategoryBlocked", category="101", reasonHash=INVOICE, regulator=REGULATOR)
    chain.payout(1, 100, 400)


def frozen_before_payout(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.rule("PayeeFrozen", payee=PAYEE, reasonHash=INVOICE, regulator=REGULATOR)
    chain.payout(1, 100, 400)


def unregistered_payee(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.payout(1, 100, 400, payee="0x00000000000000000000000000000000000000C1")


def category_changed(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.rule(
        "PayeeCategoryChanged",
        payee=PAYEE,
        previousCategory="101",
        category="102",
        changedBy=REGULATOR,
    )
    chain.payout(1, 100, 400, category=101)


def stale_rules_version(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.payout(1, 100, 400, version=chain.version - 1)


def line_frozen(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.add(
        "LineFrozen", {"lineId": str(LINE), "requestId": "3", "by": REGULATOR, "byRegulator": True}
    )
    chain.payout(1, 100, 400)


def more_than_locked(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.payout(1, 600, 0)


def wrong_locked_after(chain: Chain) -> None:
    chain.lock(1, 500, 500)
    chain.payout(1, 100, 350)


def never_locked(chain: Chain) -> None:
    chain.payout(9, 100, 0)


def lock_above_threshold(chain: Chain) -> None:
    chain.lock(1, 1_000, 1_000)


def wrong_total_locked(chain: Chain) -> None:
    chain.lock(1, 500, 900)


def entrusted_amount_differs(chain: Chain) -> None:
    chain.entrusted(drawdown=2, amount=5_000, paid=4_000)


VIOLATIONS = [
    pytest.param(blocked_before_payout, ["category-blocked"], id="category-blocked"),
    pytest.param(frozen_before_payout, ["payee-frozen"], id="payee-frozen"),
    pytest.param(unregistered_payee, ["payee-not-registered"], id="payee-not-registered"),
    pytest.param(category_changed, ["category-mismatch"], id="category-changed"),
    pytest.param(stale_rules_version, ["rules-version-mismatch"], id="stale-rules-version"),
    pytest.param(line_frozen, ["line-frozen"], id="line-frozen"),
    pytest.param(more_than_locked, ["locked-balance-exceeded"], id="more-than-locked"),
    pytest.param(wrong_locked_after, ["locked-balance-mismatch"], id="wrong-locked-after"),
    pytest.param(never_locked, ["drawdown-not-locked"], id="never-locked"),
    pytest.param(
        lock_above_threshold, ["lock-above-entrusted-threshold"], id="lock-above-threshold"
    ),
    pytest.param(wrong_total_locked, ["total-locked-mismatch"], id="wrong-total-locked"),
    pytest.param(entrusted_amount_differs, ["entrusted-payment-mismatch"], id="entrusted-differs"),
]


@pytest.mark.parametrize(("build", "expected"), VIOLATIONS)
def test_replay_names_the_broken_rule(build: Any, expected: list[str]) -> None:
    chain = lawful_start()
    build(chain)

    assert violations_of(chain) == expected


def test_later_rule_in_block_ignored() -> None:
    chain = lawful_start()
    chain.lock(1, 500, 500)
    chain.payout(1, 100, 400)
    # The block comes later in the same block, so the payout passed the rules before it.
    chain.add(
        "CategoryBlocked",
        {"category": "101", "reasonHash": INVOICE, "regulator": REGULATOR, "rulesVersion": "3"},
        contract=RULES,
        same_tx=True,
    )

    assert violations_of(chain) == []


# ---------------------------------------------------------------------------------------------
# On an index of the session's chain
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker[Session]:
    url = f"sqlite:///{tmp_path / 'index.db'}"
    upgrade_to_head(url)
    return create_session_factory(create_db_engine(url))


def replay_and_reconcile(
    w3: Web3, deployment: Deployment, sessions: sessionmaker[Session]
) -> tuple[PayoutReplay, Any]:
    facility = deployment.facilities[0].address
    with sessions() as session:
        checkpoint = load_checkpoint(session)
        assert checkpoint is not None
        replay = PayoutReplay()
        scope = ChainEvent.event.in_(sorted(REPLAYED_EVENTS))
        replay.apply_all(
            iterate_events(session, scope, EventFilter(), through_block=checkpoint.block_number)
        )
        reader = FacilityReader(w3, facility, checkpoint.block_number)
        return replay, reconcile_facility(reader, facility, replay.locks.get(facility))


def test_index_with_deleted_payout_does_not_reconcile(
    w3: Web3, deployment: Deployment, sessions: sessionmaker[Session], line_applicant: str
) -> None:
    actor = shared_chain_actor(w3, deployment, line_applicant)
    line_id = actor.open_line(1_000_000)
    payee = actor.register_payee(70_001)
    drawdown_id = actor.draw_locked(line_id, 30_000)
    actor.pay_from_locked(drawdown_id, payee, 10_000)
    catch_up(new_indexer(w3, deployment, sessions, block_range=1000, token_transfers=False))
    lawful, lawful_balances = replay_and_reconcile(w3, deployment, sessions)
    with sessions() as session:
        session.execute(
            delete(ChainEvent).where(
                ChainEvent.event == "PayoutMade",
                ChainEvent.line_id == line_id,
            )
        )
        session.commit()

    tampered, tampered_balances = replay_and_reconcile(w3, deployment, sessions)

    assert lawful.violations == []
    assert lawful_balances.locked_reconciled is True
    assert lawful_balances.token_balance_reconciled is True
    assert tampered_balances.locked_reconciled is False
    assert tampered_balances.replayed_total_locked == lawful_balances.replayed_total_locked + 10_000
    assert [
        (item.drawdown_id, item.replayed_amount, item.chain_amount)
        for item in tampered_balances.drawdown_mismatches
    ] == [(drawdown_id, 30_000, 20_000)]
    with sessions() as session:
        assert session.scalars(select(ChainEvent).where(ChainEvent.line_id == line_id)).all()
