"""Randomized sequences against the fund-flow lock, checked against a Python mirror of the rules.

Hypothesis draws entrusted and self-directed drawdowns, single and batched payouts, returns of
locked money, category blocks, payee freezes and line freezes. The mirror predicts each step's
outcome. A predicted rejection is checked by `eth_call` and must name the predicted error and
values.

After every step:

- every PayoutMade log names a payee that was registered, unfrozen and outside the blocked
  categories at the log's block, with the category and rules version then in force;
- the facility holds exactly the tokens the mirror expects, and liquidity + total locked equals it;
- total locked equals the sum of every drawdown's locked balance and the sum of every line's.
"""

import copy
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import pytest
import reliability_report
from chain_reader import ChainReader, Rejection, RulesModel, weighted
from conftest import (
    CATEGORY_CRYPTO_EXCHANGE,
    CATEGORY_EQUIPMENT,
    CATEGORY_RAW_MATERIALS,
    CATEGORY_RESEARCH,
    ENTRUSTED_THRESHOLD_FEN,
    day_number,
    next_request_id,
)
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

LIMIT_FEN = 300_000_000  # 3,000,000.00, so a few large drawdowns reach the limit
RATE_BPS = 435
# One opening day per line: `travel` cannot return to 10:00 once a later block was mined.
OPENED = [date(2027, 6, 1), date(2027, 6, 2)]
MATURITY = date(2028, 5, 31)
RUN_DAY = date(2027, 6, 3)

CATEGORIES = [
    CATEGORY_RESEARCH,
    CATEGORY_EQUIPMENT,
    CATEGORY_RAW_MATERIALS,
    CATEGORY_CRYPTO_EXCHANGE,
]
ZERO_ADDRESS = "0x" + "00" * 20
NO_INVOICE = b"\x00" * 32
STATUS_FROZEN = 2
STATUS_ACTIVE = 1

INVOICES = weighted((9, keccak(b"invoice")), (1, NO_INVOICE))
CALLERS = weighted((4, "operator"), (3, "delegate"), (1, "outsider"))

DEFAULT_RUN = settings(
    max_examples=12,
    stateful_step_count=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
LONG_RUN = settings(DEFAULT_RUN, max_examples=100, stateful_step_count=80)
# This machine's share of the reliability run: about 2,000 steps, for over 10,000 in all.
RELIABILITY_RUN = settings(DEFAULT_RUN, max_examples=25, stateful_step_count=80)


@dataclass
class LedgerMirror:
    """The token and locked balances the facility should hold."""

    facility_balance: int
    received: dict[str, int]
    locked: dict[int, tuple[int, int]] = field(default_factory=dict)  # drawdown -> (line, amount)
    frozen: dict[int, list[bool]] = field(default_factory=dict)  # line -> [by bank, by regulator]
    payouts: int = 0

    def line_locked(self, line_id: int) -> int:
        return sum(amount for line, amount in self.locked.values() if line == line_id)


@dataclass
class World:
    """The deployed state every example starts from, read once before the first example."""

    lines: list[int]
    payees: list[str]
    day: int
    review_required: bool
    rules: RulesModel
    ledger: LedgerMirror
    delegated: dict[int, bool]


@pytest.fixture
def fund_flow_world(
    facility,
    rules,
    token,
    operator,
    borrower,
    regulator,
    registered_payees,
    open_line,
    travel,
) -> World:
    """Open two lines, register a blocked exchange payee and read the starting state."""
    lines = [open_line(LIMIT_FEN, RATE_BPS, opened, MATURITY) for opened in OPENED]
    facility.setPayoutDelegate(next_request_id(), lines[0], borrower, True, sender=operator)
    exchange = to_checksum_address("0x" + "e7" * 20)
    rules.registerPayee(exchange, CATEGORY_CRYPTO_EXCHANGE, keccak(b"exchange"), sender=operator)
    rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, keccak(b"speculation"), sender=regulator)
    travel(RUN_DAY)
    unregistered = to_checksum_address("0x" + "0d" * 20)
    payees = [*(to_checksum_address(payee) for payee in registered_payees), exchange, unregistered]

    registered = {}
    for payee in payees:
        entry = rules.payee(payee)
        if entry.status != 0:
            registered[payee] = (entry.category, entry.status == STATUS_FROZEN)
    blocked = {category for category in CATEGORIES if rules.isCategoryBlocked(category)}
    ledger = LedgerMirror(
        facility_balance=token.balanceOf(facility),
        received={payee: token.balanceOf(payee) for payee in payees},
        frozen={line: [False, False] for line in lines},
    )
    return World(
        lines=lines,
        payees=payees,
        day=day_number(RUN_DAY),
        review_required=facility.policy().reviewRequired,
        rules=RulesModel(registered, blocked, rules.rulesVersion()),
        ledger=ledger,
        delegated={lines[0]: True, lines[1]: False},
    )


def build_machine(chain, facility, rules, token, accounts_by_role, world: World, outcomes: Counter):
    """Return the state machine class, bound to the deployed contracts and accounts.

    Each step adds its outcome (the call and "paid", "changed" or the error) to `outcomes`, and
    each example adds one to `outcomes["examples"]`.
    """
    operator = accounts_by_role["operator"]
    officer = accounts_by_role["officer"]
    regulator = accounts_by_role["regulator"]
    delegate = accounts_by_role["delegate"]
    callers = {"operator": operator, "delegate": delegate, "outsider": accounts_by_role["outsider"]}
    lines = world.lines
    payees = world.payees
    reader = ChainReader(chain.provider.web3, [facility, rules])
    # Registered suppliers three times as often as the exchange or the never-registered address.
    payee_weights = [(3, payee) for payee in payees[:3]] + [(1, payee) for payee in payees[3:]]
    payout_payees = weighted(*payee_weights)
    payout_payees_or_zero = weighted(*payee_weights, (1, ZERO_ADDRESS))

    class FundFlowMachine(RuleBasedStateMachine):
        drawdowns = Bundle("drawdowns")

        def __init__(self):
            super().__init__()
            outcomes["examples"] += 1
            self.snapshot = chain.snapshot()
            self.checked_block = chain.blocks.height
            self.rules = copy.deepcopy(world.rules)
            self.history = [(self.checked_block, copy.deepcopy(self.rules))]
            self.ledger = copy.deepcopy(world.ledger)
            self.freeze_history = [(self.checked_block, copy.deepcopy(self.ledger.frozen))]
            self.delegated = dict(world.delegated)
            self.payouts_seen = 0

        def teardown(self):
            chain.restore(self.snapshot)

        # ---- helpers ---------------------------------------------------------------------------

        def record_rules(self, receipt):
            self.rules.version += 1
            assert receipt.events[0].rulesVersion == self.rules.version
            self.history.append((receipt.block_number, copy.deepcopy(self.rules)))

        @staticmethod
        def in_force(history: list, block: int):
            """Return the last state in `(block, state)` history recorded at or before `block`."""
            in_force = history[0][1]
            for changed_at, state in history:
                if changed_at <= block:
                    in_force = state
            return in_force

        def expect_rejection(self, contract, method, args, sender, rejection: Rejection):
            reader.expect_rejection(contract, method, args, sender, rejection)
            outcomes[f"{method}: {rejection.error}"] += 1

        def payout_rejection(self, ledger: LedgerMirror, payout, caller_name) -> Rejection | None:
            """Predict `_payLocked`'s checks, in the order the contract makes them."""
            drawdown_id, payee, amount, invoice = payout
            line_id, locked = ledger.locked[drawdown_id]
            caller = callers[caller_name]
            if caller_name != "operator" and not (
                caller_name == "delegate" and self.delegated[line_id]
            ):
                return Rejection("FundFlowNotPayoutDelegate", (line_id, caller.address))
            if any(ledger.frozen[line_id]):
                return Rejection("CreditLineFrozen", (line_id, *ledger.frozen[line_id]))
            if invoice == NO_INVOICE:
                return Rejection("CreditInvoiceHashMissing", (line_id,))
            if amount > locked:
                return Rejection("FundFlowLockedBalanceInsufficient", (drawdown_id, locked, amount))
            return self.rules.rejection(payee)

        def apply_payout(self, ledger: LedgerMirror, payout):
            drawdown_id, payee, amount, _ = payout
            line_id, locked = ledger.locked[drawdown_id]
            ledger.locked[drawdown_id] = (line_id, locked - amount)
            ledger.facility_balance -= amount
            ledger.received[payee] += amount
            ledger.payouts += 1

        def drawdown_rejection(self, line_id, amount, payee, invoice) -> Rejection | None:
            """Predict the drawdown checks, in the order the contract makes them."""
            if any(self.ledger.frozen[line_id]):
                return Rejection("CreditLineFrozen", (line_id, *self.ledger.frozen[line_id]))
            (state,) = reader.read([(facility, "lineState", [line_id, world.day])])
            if state["reviewFlagged"] and world.review_required:
                return Rejection("CreditReviewRequired", (line_id, state["revolvingCycles"]))
            room = max(state["limit"] - state["principal"], 0)
            if amount > room:
                return Rejection("CreditLimitExceeded", (line_id, room, amount))
            if payee == ZERO_ADDRESS:
                if amount >= ENTRUSTED_THRESHOLD_FEN:
                    return Rejection(
                        "CreditEntrustedPaymentRequired", (line_id, amount, ENTRUSTED_THRESHOLD_FEN)
                    )
                return None
            if invoice == NO_INVOICE:
                return Rejection("CreditInvoiceHashMissing", (line_id,))
            return self.rules.rejection(payee)

        # ---- drawdowns -------------------------------------------------------------------------

        @rule(
            line_id=st.sampled_from(lines),
            payee=payout_payees,
            amount=st.integers(1, 2 * ENTRUSTED_THRESHOLD_FEN),
            invoice=INVOICES,
        )
        def draw_entrusted(self, line_id, payee, amount, invoice):
            args = [next_request_id(), line_id, amount, payee, invoice]
            rejection = self.drawdown_rejection(line_id, amount, payee, invoice)
            if rejection:
                self.expect_rejection(facility, "drawdown", args, operator, rejection)
                return

            receipt = facility.drawdown(*args, sender=operator)
            outcomes["drawdown: paid to payee"] += 1

            payout = receipt.events.filter(facility.PayoutMade)[0]
            assert (payout.payee, payout.amount) == (payee, amount)
            self.ledger.facility_balance -= amount
            self.ledger.received[payee] += amount
            self.ledger.payouts += 1

        @rule(
            target=drawdowns,
            line_id=st.sampled_from(lines),
            amount=st.integers(1, ENTRUSTED_THRESHOLD_FEN + ENTRUSTED_THRESHOLD_FEN // 10),
        )
        def draw_self_directed(self, line_id, amount):
            args = [next_request_id(), line_id, amount, ZERO_ADDRESS, NO_INVOICE]
            rejection = self.drawdown_rejection(line_id, amount, ZERO_ADDRESS, NO_INVOICE)
            if rejection:
                self.expect_rejection(facility, "drawdown", args, operator, rejection)
                return multiple()

            receipt = facility.drawdown(*args, sender=operator)
            outcomes["drawdown: locked"] += 1

            drawdown_id = receipt.events.filter(facility.FundsLocked)[0].drawdownId
            self.ledger.locked[drawdown_id] = (line_id, amount)
            return drawdown_id

        # ---- payouts and returns ---------------------------------------------------------------

        @rule(
            drawdown_id=drawdowns,
            payee=payout_payees_or_zero,
            share_pct=st.integers(1, 110),
            invoice=INVOICES,
            caller=CALLERS,
        )
        def pay_from_locked(self, drawdown_id, payee, share_pct, invoice, caller):
            amount = max(1, self.ledger.locked[drawdown_id][1] * share_pct // 100)
            payout = (drawdown_id, payee, amount, invoice)
            args = [next_request_id(), *payout]
            rejection = self.payout_rejection(self.ledger, payout, caller)
            if rejection:
                self.expect_rejection(facility, "payFromLocked", args, callers[caller], rejection)
                return

            receipt = facility.payFromLocked(*args, sender=callers[caller])
            outcomes["payFromLocked: paid"] += 1

            assert len(receipt.events.filter(facility.PayoutMade)) == 1
            self.apply_payout(self.ledger, payout)

        @rule(
            items=st.lists(
                st.tuples(drawdowns, payout_payees, st.integers(1, 60)),
                min_size=1,
                max_size=4,
            ),
            caller=CALLERS,
        )
        def pay_batch(self, items, caller):
            trial = copy.deepcopy(self.ledger)
            payouts = []
            rejection = None
            for drawdown_id, payee, share_pct in items:
                amount = max(1, trial.locked[drawdown_id][1] * share_pct // 100)
                payout = (drawdown_id, payee, amount, keccak(b"batch invoice"))
                payouts.append(payout)
                rejection = rejection or self.payout_rejection(trial, payout, caller)
                if not rejection:
                    self.apply_payout(trial, payout)
            args = [next_request_id(), payouts]
            if rejection:
                self.expect_rejection(
                    facility, "payFromLockedBatch", args, callers[caller], rejection
                )
                return

            receipt = facility.payFromLockedBatch(*args, sender=callers[caller])
            outcomes[f"payFromLockedBatch: paid {len(payouts)}"] += 1

            assert len(receipt.events.filter(facility.PayoutMade)) == len(payouts)
            self.ledger = trial

        @rule(drawdown_id=drawdowns, share_pct=st.integers(1, 110))
        def repay_from_locked(self, drawdown_id, share_pct):
            line_id, locked = self.ledger.locked[drawdown_id]
            amount = max(1, locked * share_pct // 100)
            args = [next_request_id(), drawdown_id, amount]
            if amount > locked:
                rejection = Rejection(
                    "FundFlowLockedBalanceInsufficient", (drawdown_id, locked, amount)
                )
                self.expect_rejection(facility, "repayFromLocked", args, operator, rejection)
                return

            facility.repayFromLocked(*args, sender=operator)
            outcomes["repayFromLocked: returned"] += 1

            self.ledger.locked[drawdown_id] = (line_id, locked - amount)

        # ---- rule changes ----------------------------------------------------------------------

        # One rule picks among the changes, so that about one step in six changes the rules and
        # payouts still find payees they may pay.
        @rule(
            change=st.sampled_from(["category", "payee", "recategorise", "line", "delegate"]),
            category=st.sampled_from(CATEGORIES),
            payee=st.sampled_from(payees),
            line_id=st.sampled_from(lines),
            by_regulator=st.booleans(),
        )
        def change_rules(self, change, category, payee, line_id, by_regulator):
            if change == "category":
                self.toggle_category_block(category)
            elif change == "payee":
                self.toggle_payee_freeze(payee)
            elif change == "recategorise":
                self.recategorise(payee, category, by_regulator)
            elif change == "line":
                self.toggle_line_freeze(line_id, by_regulator)
            else:
                self.toggle_delegate(line_id)

        def toggle_category_block(self, category):
            """Block `category`, or unblock it, keeping at most one supplier category blocked."""
            blocked_suppliers = sorted(self.rules.blocked - {CATEGORY_CRYPTO_EXCHANGE, category})
            if category in self.rules.blocked or blocked_suppliers:
                block = False
                category = category if category in self.rules.blocked else blocked_suppliers[0]
            else:
                block = True
            method = "blockCategory" if block else "unblockCategory"
            args = [category, keccak(b"notice")] if block else [category]

            receipt = getattr(rules, method)(*args, sender=regulator)
            outcomes[f"{method}: changed"] += 1

            if block:
                self.rules.blocked.add(category)
            else:
                self.rules.blocked.discard(category)
            self.record_rules(receipt)

        def toggle_payee_freeze(self, payee):
            """Freeze `payee`, or unfreeze a frozen one, keeping at most one payee frozen."""
            if payee not in self.rules.payees:
                rejection = Rejection("FundFlowPayeeNotRegistered", (payee,))
                args = [payee, keccak(b"notice")]
                self.expect_rejection(rules, "freezePayee", args, regulator, rejection)
                return
            frozen_payees = [other for other, (_, frozen) in self.rules.payees.items() if frozen]
            freeze = not frozen_payees
            payee = payee if freeze or payee in frozen_payees else frozen_payees[0]
            method = "freezePayee" if freeze else "unfreezePayee"
            args = [payee, keccak(b"notice")] if freeze else [payee]

            receipt = getattr(rules, method)(*args, sender=regulator)
            outcomes[f"{method}: changed"] += 1

            self.rules.payees[payee] = (self.rules.payees[payee][0], freeze)
            self.record_rules(receipt)

        def recategorise(self, payee, category, by_regulator):
            sender = regulator if by_regulator else operator
            args = [payee, category]
            rejection = None
            if payee not in self.rules.payees:
                rejection = Rejection("FundFlowPayeeNotRegistered", (payee,))
            elif not by_regulator and self.rules.payees[payee][0] in self.rules.blocked:
                rejection = Rejection(
                    "FundFlowCategoryBlocked", (payee, self.rules.payees[payee][0])
                )
            if rejection:
                self.expect_rejection(rules, "changePayeeCategory", args, sender, rejection)
                return

            receipt = rules.changePayeeCategory(*args, sender=sender)
            outcomes["changePayeeCategory: changed"] += 1

            self.rules.payees[payee] = (category, self.rules.payees[payee][1])
            self.record_rules(receipt)

        def toggle_line_freeze(self, line_id, by_regulator):
            """Freeze an unfrozen line or lift a freeze, so a line is usable about half the time."""
            flags = self.ledger.frozen[line_id]
            freeze = not any(flags)
            if not freeze and not flags[by_regulator]:
                by_regulator = not by_regulator
            if by_regulator:
                method = "regulatorFreezeLine" if freeze else "regulatorUnfreezeLine"
            else:
                method = "freezeLine" if freeze else "unfreezeLine"
            sender = regulator if by_regulator else officer

            receipt = getattr(facility, method)(next_request_id(), line_id, sender=sender)
            outcomes[f"{method}: changed"] += 1

            flags[by_regulator] = freeze
            self.freeze_history.append((receipt.block_number, copy.deepcopy(self.ledger.frozen)))

        def toggle_delegate(self, line_id):
            allowed = not self.delegated[line_id]

            facility.setPayoutDelegate(
                next_request_id(), line_id, delegate, allowed, sender=operator
            )
            outcomes["setPayoutDelegate: changed"] += 1

            self.delegated[line_id] = allowed

        # ---- invariants ------------------------------------------------------------------------

        @invariant()
        def payouts_obeyed_rules_in_force(self):
            head = chain.blocks.height
            logs = reader.payout_logs(facility.address, self.checked_block + 1, head)
            for log in logs:
                rules_then = self.in_force(self.history, log["block"])
                frozen_then = self.in_force(self.freeze_history, log["block"])
                assert not any(frozen_then[log["lineId"]]), f"PayoutMade from a frozen line: {log}"
                payee = log["payee"]
                assert rules_then.rejection(payee) is None, (
                    f"PayoutMade to a payee the rules rejected: {log}"
                )
                assert log["category"] == rules_then.payees[payee][0], log
                assert log["rulesVersion"] == rules_then.version, log
            self.payouts_seen += len(logs)
            self.checked_block = head
            assert self.payouts_seen == self.ledger.payouts

        @invariant()
        def balances_reconcile(self):
            drawdown_ids = sorted(self.ledger.locked)
            calls = [
                (token, "balanceOf", [facility.address]),
                (facility, "liquidity", []),
                (facility, "totalLocked", []),
                *((token, "balanceOf", [payee]) for payee in payees),
                *((facility, "lockedBalance", [drawdown_id]) for drawdown_id in drawdown_ids),
                *((facility, "lineState", [line_id, world.day]) for line_id in lines),
            ]
            balance, liquidity, total_locked, *rest = reader.read(calls)
            received = rest[: len(payees)]
            locked = rest[len(payees) : len(payees) + len(drawdown_ids)]
            line_states = rest[len(payees) + len(drawdown_ids) :]

            assert balance == self.ledger.facility_balance
            assert balance == liquidity + total_locked
            assert received == [self.ledger.received[payee] for payee in payees]
            assert locked == [self.ledger.locked[drawdown_id] for drawdown_id in drawdown_ids]
            assert total_locked == sum(amount for _, amount in locked)
            assert total_locked == sum(state["locked"] for state in line_states)
            for line_id, state in zip(lines, line_states, strict=True):
                assert state["locked"] == self.ledger.line_locked(line_id), line_id
                frozen = [state["frozenByBank"], state["frozenByRegulator"]]
                assert frozen == self.ledger.frozen[line_id], line_id

    return FundFlowMachine


@pytest.fixture
def run_machine(
    chain, facility, rules, token, operator, officer, regulator, borrower, outsider, fund_flow_world
):
    """Return a function that runs the machine with the given settings and prints its outcomes."""
    roles = {
        "operator": operator,
        "officer": officer,
        "regulator": regulator,
        "delegate": borrower,
        "outsider": outsider,
    }

    def run(run_settings):
        outcomes = Counter()
        machine = build_machine(chain, facility, rules, token, roles, fund_flow_world, outcomes)

        try:
            run_state_machine_as_test(machine, settings=run_settings)
        finally:
            # Every rule records exactly one outcome, so the outcomes count the steps run.
            examples = outcomes.pop("examples")
            reliability_report.COUNTS["examples"] += examples
            reliability_report.COUNTS["invariant_steps"] += outcomes.total()

        print(f"\nfund-flow machine: {examples} examples, {outcomes.total()} steps")
        for outcome, count in sorted(outcomes.items()):
            print(f"  {count:5d}  {outcome}")

    return run


@pytest.mark.reliability
def test_fundFlow_invariantsHoldForRandomSequences(run_machine):
    run_machine(DEFAULT_RUN)


# Runs with `-m slow`, or with LEDGER_RELIABILITY_FULL=1 (see conftest.py).
@pytest.mark.slow
@pytest.mark.reliability
@pytest.mark.timeout(3600)
def test_fundFlow_invariantsHoldForLongSequences(run_machine, request):
    selected_as_slow = "slow" in (request.config.getoption("markexpr") or "")
    run_machine(LONG_RUN if selected_as_slow else RELIABILITY_RUN)
