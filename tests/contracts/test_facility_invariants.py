"""Random sequences of every facility and rules action by every role, checked against a model.

Hypothesis draws applications, approvals, openings, drawdowns (entrusted and self-directed),
repayments, payoffs and payouts from locked balances (single and batched). It also draws returns
of locked money, limit changes by one officer and by two, renewals, reviews, freezes by the bank
and the regulator, defaults, write-offs, recoveries and closures. Pools, liquidity, policy
changes, payee registry changes, reused request ids and time jumps of random size complete the
set. Each call goes out from a random role, usually the one allowed to make it.

The model predicts every outcome from the product rules, the role table below and the reference
interest model (`ledger_bridge.reference.interest.LineModel`), never from values read back from
the contracts. A predicted rejection is checked by `eth_call` and must name the predicted custom
error and values; a predicted success must not revert. After every step:

1. principal stays within the limit unless a limit change put it below principal;
2. every tracked account holds the predicted tokens, they sum to the total supply, and the
   facility's balance equals liquidity + total locked;
3. each line's principal, interest due, overdue interest, accrued interest and payoff amount
   equal the reference model's to the fen;
4. every token transfer out of the facility is a PayoutMade to a payee that the registry allowed
   at that block, or a treasury withdrawal;
5. a closed, rejected or written-off line never changes again;
6. roles: an action by a role without the right is rejected with AccessControlUnauthorizedAccount
   (or the contract's own access error), and an allowed action never is.

The default run is 8 examples of up to 30 steps. LEDGER_RELIABILITY_FULL=1 runs 150 examples of
up to 70 steps, about 9,000 steps in practice.
"""

import copy
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, time, timedelta

import pytest
import reliability_report
from chain_reader import (
    PAYOUT_MADE_TOPIC,
    ChainReader,
    Rejection,
    RulesModel,
    decode_payout,
    weighted,
)
from conftest import (
    CATEGORY_CRYPTO_EXCHANGE,
    CATEGORY_EQUIPMENT,
    CATEGORY_RAW_MATERIALS,
    CATEGORY_RESEARCH,
    DEFAULT_PENALTY_MARKUP_PCT,
    DEFAULT_SETTLEMENT_DAY,
    ENTRUSTED_THRESHOLD_FEN,
    cst_timestamp,
    day_number,
    next_request_id,
    reverts_with,
)
from eth_abi import decode as abi_decode
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger_bridge.reference.interest import LineModel, round_half_up

# Line statuses, as numbered by ICreditFacility.LineStatus.
APPLIED, APPROVED, REJECTED, ACTIVE, DEFAULTED, WRITTEN_OFF, CLOSED = range(1, 8)
# Nothing may change a line in these statuses again.
TERMINAL = {REJECTED, WRITTEN_OFF, CLOSED}
ACCRUING = {ACTIVE, DEFAULTED}

ROLE_HASHES = {
    "DEFAULT_ADMIN": b"\x00" * 32,
    "OPERATOR": keccak(text="OPERATOR_ROLE"),
    "CREDIT_OFFICER": keccak(text="CREDIT_OFFICER_ROLE"),
    "TREASURY": keccak(text="TREASURY_ROLE"),
    "REGULATOR": keccak(text="REGULATOR_ROLE"),
    "REGISTRAR": keccak(text="REGISTRAR_ROLE"),
}
# The actors that have each role. The second officer is an operator too, so that an officer can
# submit an application and must then leave its approval to someone else.
ROLE_HOLDERS = {
    "DEFAULT_ADMIN": {"admin"},
    "OPERATOR": {"operator", "second_officer"},
    "CREDIT_OFFICER": {"officer", "second_officer"},
    "TREASURY": {"treasury"},
    "REGULATOR": {"regulator"},
    "REGISTRAR": {"operator"},
}
ACTORS = [
    "admin",
    "operator",
    "officer",
    "second_officer",
    "regulator",
    "treasury",
    "outsider",
    "borrower",
]

START = date(2027, 1, 4)
MAX_LINES = 6
MAX_POOLS = 3
RATE_LIMIT_BPS = 10_000
ZERO_ADDRESS = "0x" + "00" * 20
NO_HASH = b"\x00" * 32
INVOICE = keccak(b"invoice")

TRANSFER_TOPIC = keccak(text="Transfer(address,address,uint256)")
WITHDRAWN_TOPIC = keccak(text="LiquidityWithdrawn(address,uint256,uint128,uint128)")

# (entrustedThreshold, maxLimitChangeBps, limitChangeIntervalDays, cycleThreshold, reviewRequired)
POLICIES = [
    (ENTRUSTED_THRESHOLD_FEN, 2200, 90, 8, True),
    (ENTRUSTED_THRESHOLD_FEN // 2, 3000, 30, 1, True),
    (ENTRUSTED_THRESHOLD_FEN * 2, 2200, 60, 2, False),
    (ENTRUSTED_THRESHOLD_FEN, 10_001, 90, 8, True),
    (ENTRUSTED_THRESHOLD_FEN, 2200, 90, 0, True),
    (0, 2200, 90, 8, True),
]

# The caller: None means the role that may make the call, anything else for that actor.
CALLERS = weighted((30, None), *((1, actor) for actor in ACTORS))
LINE_PICKS = st.integers(0, MAX_LINES + 1)
# Which payee a drawdown pays: None locks the money for the borrower.
DRAWDOWN_PAYEES = weighted((5, None), (3, 0), (2, 1), (1, 2), (1, 3), (1, 4), (1, 5))
PER_MILLE = st.one_of(st.integers(1, 1000), st.integers(990, 1010))
DAYS = weighted((3, "same"), (4, "few"), (3, "weeks"), (1, "months"))
# A wait before a drawdown or repayment, so that time passes between most money movements.
WAITS = weighted((4, None), (1, "same"), (3, "few"), (1, "weeks"))

FULL_RUN_SETTINGS = {"max_examples": 150, "stateful_step_count": 70}
DEFAULT_RUN = settings(
    max_examples=8,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
LONG_RUN = settings(DEFAULT_RUN, **FULL_RUN_SETTINGS)


@dataclass
class LineRecord:
    """What the model expects of one line."""

    line_id: int
    borrower: str
    submitter: str
    limit: int
    rate_bps: int
    maturity: date
    status: int = APPLIED
    interest: LineModel | None = None
    frozen: list[bool] = field(default_factory=lambda: [False, False])  # by bank, by regulator
    cycles: int = 0
    reviewed_cycles: int = 0
    review_flagged: bool = False
    last_limit_change_day: int = 0
    pending_limit: tuple[int, str] | None = None  # (limit, proposing actor)
    pending_rate_day: date | None = None
    pool: int = 0
    locked: int = 0
    written_off: int = 0
    delegates: set[str] = field(default_factory=set)
    # Set by a limit change that put the limit below principal, and cleared once principal fits.
    over_limit_allowed: bool = False

    @property
    def principal(self) -> int:
        return self.interest.principal_fen if self.interest else 0


@dataclass
class FacilityModel:
    """Everything the machine predicts, copied fresh for each example."""

    day: date
    lines: dict[int, LineRecord]
    line_count: int
    drawdowns: dict[int, tuple[int, int | None]]  # id -> (line, locked amount or None if entrusted)
    drawdown_count: int
    pools: dict[int, int]  # id -> limit
    balances: dict[str, int]
    total_supply: int
    total_locked: int
    policy: tuple
    rules: RulesModel
    used_requests: list[int] = field(default_factory=list)

    @property
    def facility_balance(self) -> int:
        return self.balances[self.facility_address]

    facility_address: str = ""

    def liquidity(self) -> int:
        return self.facility_balance - self.total_locked

    def pool_used(self, pool_id: int) -> int:
        return sum(line.principal for line in self.lines.values() if line.pool == pool_id)

    def room(self, line: LineRecord) -> tuple[int, int | None]:
        """Return the line's own room and its pool's room (None outside a pool)."""
        line_room = max(line.limit - line.principal, 0)
        if not line.pool:
            return line_room, None
        return line_room, max(self.pools[line.pool] - self.pool_used(line.pool), 0)


@dataclass
class World:
    """The deployed state and accounts every example starts from."""

    accounts: dict[str, object]
    payees: list[str]
    model: FacilityModel
    holders: list[str]


# The limits of the lines open when every example starts.
LIMITS = (300_000_000, 80_000_000, 20_000_000)


@pytest.fixture
def facility_world(
    chain,
    facility,
    rules,
    token,
    admin,
    operator,
    officer,
    second_officer,
    regulator,
    treasury,
    outsider,
    borrower,
    registered_payees,
    travel,
) -> World:
    """Open three lines (one locked drawdown, one pool member, one in default) and read balances."""
    accounts = {
        "admin": admin,
        "operator": operator,
        "officer": officer,
        "second_officer": second_officer,
        "regulator": regulator,
        "treasury": treasury,
        "outsider": outsider,
        "borrower": borrower,
    }
    facility.grantRole(ROLE_HASHES["OPERATOR"], second_officer, sender=admin)
    token.mint(treasury, 10**14, sender=admin)
    token.approve(facility, 2**256 - 1, sender=treasury)
    token.mint(second_officer, 10**13, sender=admin)
    token.approve(facility, 2**256 - 1, sender=second_officer)
    exchange = to_checksum_address("0x" + "e7" * 20)
    rules.registerPayee(exchange, CATEGORY_CRYPTO_EXCHANGE, keccak(b"exchange"), sender=operator)
    rules.blockCategory(CATEGORY_CRYPTO_EXCHANGE, keccak(b"speculation"), sender=regulator)

    travel(START)
    maturity = START + timedelta(days=120)
    line_ids = []
    for limit in LIMITS:
        receipt = facility.applyForLine(
            next_request_id(),
            borrower,
            keccak(b"application"),
            limit,
            435,
            day_number(maturity),
            sender=operator,
        )
        line_id = receipt.events[0].lineId
        facility.approveLine(next_request_id(), line_id, sender=officer)
        facility.openLine(next_request_id(), line_id, sender=officer)
        line_ids.append(line_id)
    pool_id = facility.createPool(next_request_id(), 200_000_000, sender=officer).events[0].poolId
    facility.addPoolMember(next_request_id(), pool_id, line_ids[1], sender=officer)
    drawn = facility.drawdown(
        next_request_id(), line_ids[0], 5_000_000, ZERO_ADDRESS, NO_HASH, sender=operator
    )
    drawdown_id = drawn.events.filter(facility.FundsLocked)[0].drawdownId
    facility.setPayoutDelegate(next_request_id(), line_ids[0], borrower, True, sender=operator)
    # The third line starts in default, so that write-offs and recoveries come up in short runs.
    paid = facility.drawdown(
        next_request_id(), line_ids[2], 3_000_000, registered_payees[0], INVOICE, sender=operator
    )
    paid_drawdown_id = paid.events.filter(facility.LineDrawn)[0].drawdownId
    facility.declareDefault(next_request_id(), line_ids[2], sender=officer)

    payees = [
        *(to_checksum_address(payee) for payee in registered_payees),
        exchange,
        to_checksum_address("0x" + "0d" * 20),
        to_checksum_address("0x" + "0e" * 20),
    ]
    holders = [facility.address, *(account.address for account in accounts.values()), *payees]
    registered = {}
    for payee in payees:
        entry = rules.payee(payee)
        if entry.status != 0:
            registered[payee] = (entry.category, entry.status == 2)
    day = START
    lines = {}
    for line_id, limit in zip(line_ids, LIMITS, strict=True):
        interest = LineModel(
            limit, 435, maturity, DEFAULT_SETTLEMENT_DAY, DEFAULT_PENALTY_MARKUP_PCT
        )
        interest.advance_to(day)
        lines[line_id] = LineRecord(
            line_id, borrower.address, "operator", limit, 435, maturity, ACTIVE, interest
        )
    lines[line_ids[0]].interest.draw(day, 5_000_000)
    lines[line_ids[0]].locked = 5_000_000
    lines[line_ids[0]].delegates.add("borrower")
    lines[line_ids[1]].pool = pool_id
    lines[line_ids[2]].interest.draw(day, 3_000_000)
    lines[line_ids[2]].status = DEFAULTED
    model = FacilityModel(
        day=day,
        lines=lines,
        line_count=facility.lineCount(),
        drawdowns={drawdown_id: (line_ids[0], 5_000_000), paid_drawdown_id: (line_ids[2], None)},
        drawdown_count=paid_drawdown_id,
        pools={pool_id: 200_000_000},
        balances={holder: token.balanceOf(holder) for holder in holders},
        total_supply=token.totalSupply(),
        total_locked=facility.totalLocked(),
        policy=POLICIES[0],
        rules=RulesModel(registered, {CATEGORY_CRYPTO_EXCHANGE}, rules.rulesVersion()),
        facility_address=facility.address,
    )
    assert chain.blocks.head.timestamp < cst_timestamp(START, time(12, 0))
    return World(accounts, payees, model, holders)


def build_machine(chain, facility, rules, token, world: World, outcomes: Counter):
    """Return the state machine class, bound to the deployed contracts and the world."""
    reader = ChainReader(chain.provider.web3, [facility, rules, token])
    web3 = chain.provider.web3
    accounts = world.accounts
    address_of = {name: account.address for name, account in accounts.items()}
    payees = world.payees
    categories = [
        CATEGORY_RESEARCH,
        CATEGORY_EQUIPMENT,
        CATEGORY_RAW_MATERIALS,
        CATEGORY_CRYPTO_EXCHANGE,
        0,
    ]

    class FacilityMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            outcomes["examples"] += 1
            self.snapshot = chain.snapshot()
            self.model = copy.deepcopy(world.model)
            self.timestamp = chain.blocks.head.timestamp
            # Line id -> the lineState recorded when the line reached a terminal status.
            self.final_states: dict[int, dict] = {}

        def teardown(self):
            chain.restore(self.snapshot)

        # ---- prediction helpers ----------------------------------------------------------------

        @property
        def today(self) -> int:
            return day_number(self.model.day)

        def actor(self, caller, default: str) -> str:
            return default if caller is None else caller

        def lacks(self, actor: str, role: str) -> Rejection | None:
            if actor in ROLE_HOLDERS[role]:
                return None
            return Rejection(
                "AccessControlUnauthorizedAccount", (address_of[actor], ROLE_HASHES[role])
            )

        def pick_line(self, pick: int, *preferred: int) -> int:
            """Return an existing line id, or once in a while one that does not exist.

            Three picks in four take a line in one of the `preferred` statuses if there is one.
            """
            ids = sorted(self.model.lines)
            if pick > MAX_LINES:
                return self.model.line_count + 1
            candidates = [
                line_id for line_id in ids if self.model.lines[line_id].status in preferred
            ]
            if candidates and pick % 4 != 3:
                return candidates[pick % len(candidates)]
            return ids[pick % len(ids)]

        def line_in(self, line_id: int, *statuses: int) -> Rejection | None:
            line = self.model.lines.get(line_id)
            if line is None:
                return Rejection("CreditLineNotFound", (line_id,))
            if line.status not in statuses:
                return Rejection("CreditLineStatusInvalid", (line_id, line.status))
            return None

        def frozen_rejection(self, line: LineRecord) -> Rejection | None:
            if any(line.frozen):
                return Rejection("CreditLineFrozen", (line.line_id, *line.frozen))
            return None

        def solo_limit_rejection(self, line: LineRecord, limit: int) -> Rejection | None:
            _, max_bps, interval, _, _ = self.model.policy
            if limit == line.limit:
                return Rejection("CreditLimitUnchanged", (line.line_id, limit))
            if abs(limit - line.limit) * 10_000 > line.limit * max_bps:
                return Rejection(
                    "CreditLimitChangeTooLarge", (line.line_id, line.limit, limit, max_bps)
                )
            last = line.last_limit_change_day
            if last and self.today < last + interval:
                return Rejection("CreditLimitChangeTooSoon", (line.line_id, last, last + interval))
            return None

        def owed(self, line: LineRecord) -> int:
            return line.interest.payoff_amount(self.model.day) if line.interest else 0

        # ---- execution -------------------------------------------------------------------------

        def execute(self, contract, method, args, actor, rejection, payouts=(), counted=True):
            """Check a predicted rejection by `eth_call`, or send the call and check its payouts.

            Returns the receipt of a sent transaction, or None for a rejection. A call that is part
            of a larger step passes `counted=False`, so that the outcomes still count steps.
            """
            sender = address_of[actor]
            if rejection is not None:
                reader.expect_rejection(contract, method, args, sender, rejection)
                outcomes[f"{method}: {rejection.error}"] += 1
                return None
            receipt = reader.send(contract, method, args, sender)
            self.check_money_out(receipt, list(payouts))
            if contract is facility and isinstance(args[0], int):
                self.model.used_requests.append(args[0])
            if counted:
                outcomes[f"{method}: done"] += 1
            return receipt

        def check_money_out(self, receipt, expected_payouts: list[tuple[int, str, int]]):
            """Check that money left the facility only as the predicted, allowed payouts."""
            payouts_made = []
            transfers_out = []
            withdrawals = []
            for log in receipt["logs"]:
                topic = bytes(log["topics"][0])
                if log["address"] == facility.address and topic == PAYOUT_MADE_TOPIC:
                    payouts_made.append(decode_payout(log))
                elif log["address"] == facility.address and topic == WITHDRAWN_TOPIC:
                    (_, amount, _) = abi_decode(["uint256", "uint128", "uint128"], log["data"])
                    to = to_checksum_address(log["topics"][1][-20:])
                    withdrawals.append((to, amount))
                elif log["address"] == token.address and topic == TRANSFER_TOPIC:
                    sender = to_checksum_address(log["topics"][1][-20:])
                    if sender == facility.address:
                        (amount,) = abi_decode(["uint256"], log["data"])
                        transfers_out.append((to_checksum_address(log["topics"][2][-20:]), amount))
            for payout in payouts_made:
                payee = payout["payee"]
                rejection = self.model.rules.rejection(payee)
                assert rejection is None, f"payout the rules reject: {payout}"
                assert payout["category"] == self.model.rules.payees[payee][0], payout
                assert payout["rulesVersion"] == self.model.rules.version, payout
                line = self.model.lines[payout["lineId"]]
                assert line.status == ACTIVE, f"payout from a line in status {line.status}"
                assert not any(line.frozen), f"payout from a frozen line: {payout}"
            made_triples = [(p["lineId"], p["payee"], p["amount"]) for p in payouts_made]
            assert made_triples == expected_payouts, "payouts differ from the prediction"
            paid = [(payee, amount) for _, payee, amount in made_triples]
            assert sorted(transfers_out) == sorted(paid + withdrawals), "unexplained transfer out"

        def move_tokens(self, source: str, target: str, amount: int):
            self.model.balances[source] -= amount
            self.model.balances[target] += amount

        def after_repayment(self, line: LineRecord, had_principal: bool):
            """Count a revolving cycle when principal returned to zero."""
            if had_principal and line.principal == 0:
                line.cycles += 1
                threshold = self.model.policy[3]
                if line.cycles - line.reviewed_cycles > threshold:
                    line.review_flagged = True
            if line.principal <= line.limit:
                line.over_limit_allowed = False

        def leave_terminal(self, line: LineRecord, status: int):
            line.status = status
            line.pool = 0
            line.pending_limit = None

        # ---- time ------------------------------------------------------------------------------

        @rule(size=DAYS, days=st.integers(1, 200), minutes=st.integers(1, 480))
        def pass_time(self, size, days, minutes):
            self.advance_clock(size, days, minutes)
            outcomes[f"time: {size}"] += 1

        def advance_clock(self, size, days, minutes):
            """Move the chain's clock: within the day, by days, by weeks or by months."""
            head = web3.eth.get_block("latest")["timestamp"]
            if size == "same":
                target = max(self.timestamp, head) + minutes * 60
                end_of_working_day = cst_timestamp(self.model.day, time(18, 0))
                target = min(target, end_of_working_day)
                day = self.model.day
            else:
                days = {"few": 1 + days % 3, "weeks": 4 + days % 32, "months": 36 + days}[size]
                day = self.model.day + timedelta(days=days)
                target = cst_timestamp(day, time(8, 0)) + minutes * 60
            if target > head:
                web3.provider.make_request("evm_mine", [target])
                self.timestamp = target
            self.model.day = day
            for line in self.model.lines.values():
                if line.interest and line.status in ACCRUING:
                    line.interest.advance_to(day)
                    if line.pending_rate_day and line.pending_rate_day <= day:
                        line.pending_rate_day = None

        # ---- applications ----------------------------------------------------------------------

        @precondition(lambda self: len(self.model.lines) < MAX_LINES)
        @rule(
            caller=CALLERS,
            limit=st.integers(1_000_000, 400_000_000),
            rate_bps=st.integers(1, 2400),
            term_days=st.integers(20, 300),
            borrower=st.sampled_from(["borrower", "outsider"]),
            flaw=weighted((12, None), (1, "borrower"), (1, "limit"), (1, "rate"), (1, "maturity")),
        )
        def apply_for_line(self, caller, limit, rate_bps, term_days, borrower, flaw):
            """Apply for a line, with valid terms or with one invalid term."""
            actor = self.actor(caller, "operator")
            borrower = "zero" if flaw == "borrower" else borrower
            limit = 0 if flaw == "limit" else limit
            if flaw == "rate":
                rate_bps = 0 if rate_bps % 2 else RATE_LIMIT_BPS + 1
            term_days = 0 if flaw == "maturity" else term_days
            borrower_address = ZERO_ADDRESS if borrower == "zero" else address_of[borrower]
            maturity = self.model.day + timedelta(days=term_days)
            args = [
                next_request_id(),
                borrower_address,
                keccak(b"application"),
                limit,
                rate_bps,
                day_number(maturity),
            ]
            rejection = self.lacks(actor, "OPERATOR")
            if rejection is None and borrower == "zero":
                rejection = Rejection("CreditBorrowerInvalid", (ZERO_ADDRESS,))
            if rejection is None and limit == 0:
                rejection = Rejection("CreditAmountZero", ())
            if rejection is None and not 0 < rate_bps <= RATE_LIMIT_BPS:
                rejection = Rejection("CreditRateInvalid", (rate_bps,))
            if rejection is None and term_days == 0:
                rejection = Rejection("CreditMaturityInvalid", (day_number(maturity), self.today))
            if self.execute(facility, "applyForLine", args, actor, rejection):
                self.model.line_count += 1
                line_id = self.model.line_count
                self.model.lines[line_id] = LineRecord(
                    line_id, borrower_address, actor, limit, rate_bps, maturity
                )

        @rule(
            action=st.sampled_from(["approve", "reject", "open"]),
            pick=LINE_PICKS,
            caller=CALLERS,
        )
        def decide_application(self, action, pick, caller):
            preferred = {"approve": [APPLIED], "reject": [APPLIED, APPROVED], "open": [APPROVED]}
            line_id = self.pick_line(pick, *preferred[action])
            line = self.model.lines.get(line_id)
            actor = self.actor(caller, "officer")
            if caller is None and line and line.submitter == "officer":
                actor = "second_officer"
            rejection = self.lacks(actor, "CREDIT_OFFICER")
            method = {"approve": "approveLine", "reject": "rejectLine", "open": "openLine"}[action]
            if action == "approve":
                rejection = rejection or self.line_in(line_id, APPLIED)
                if rejection is None and line.submitter == actor:
                    rejection = Rejection("CreditApproverIsSubmitter", (line_id, address_of[actor]))
            elif action == "reject":
                rejection = rejection or self.line_in(line_id, APPLIED, APPROVED)
            else:
                rejection = rejection or self.line_in(line_id, APPROVED)
                if rejection is None and line.maturity <= self.model.day:
                    rejection = Rejection(
                        "CreditMaturityInvalid", (day_number(line.maturity), self.today)
                    )
            if not self.execute(facility, method, [next_request_id(), line_id], actor, rejection):
                return
            if action == "approve":
                line.status = APPROVED
            elif action == "reject":
                self.leave_terminal(line, REJECTED)
            else:
                line.status = ACTIVE
                line.interest = LineModel(
                    line.limit,
                    line.rate_bps,
                    line.maturity,
                    DEFAULT_SETTLEMENT_DAY,
                    DEFAULT_PENALTY_MARKUP_PCT,
                )
                line.interest.advance_to(self.model.day)

        # ---- drawdowns -------------------------------------------------------------------------

        @rule(
            pick=LINE_PICKS,
            kind=weighted((10, "share"), (1, "over"), (1, "fen"), (1, "zero"), (1, "large")),
            per_mille=PER_MILLE,
            payee=DRAWDOWN_PAYEES,
            invoice=weighted((9, INVOICE), (1, NO_HASH)),
            caller=CALLERS,
            wait=WAITS,
        )
        def drawdown(self, pick, kind, per_mille, payee, invoice, caller, wait):
            """Draw on a line, to a payee directly or (payee None) into the borrower's lock."""
            if wait:
                self.advance_clock(wait, per_mille, per_mille % 120 + 1)
            line_id = self.pick_line(pick, ACTIVE)
            line = self.model.lines.get(line_id)
            actor = self.actor(caller, "operator")
            threshold = self.model.policy[0]
            payee = -1 if payee is None else payee
            room = 0
            if line and line.status == ACTIVE:
                line_room, pool_room = self.model.room(line)
                room = line_room if pool_room is None else min(line_room, pool_room)
            if payee < 0 and kind == "share":
                # Most locked drawdowns stay under the entrusted threshold, as the policy requires.
                room = min(room, threshold - 1)
            amount = {
                "share": max(room * per_mille // 1000, 1),
                "over": room + per_mille,
                "fen": per_mille % 500 + 1,
                "zero": 0,
                "large": threshold + per_mille * 1000,
            }[kind]
            payee_address = ZERO_ADDRESS if payee < 0 else payees[payee]
            args = [next_request_id(), line_id, amount, payee_address, invoice]

            rejection = self.lacks(actor, "OPERATOR")
            if rejection is None and amount == 0:
                rejection = Rejection("CreditAmountZero", ())
            rejection = rejection or self.line_in(line_id, ACTIVE)
            if rejection is None:
                rejection = self.drawable_rejection(line, amount)
            if rejection is None and amount > self.model.liquidity():
                rejection = Rejection(
                    "CreditInsufficientLiquidity", (self.model.liquidity(), amount)
                )
            if rejection is None and payee < 0 and amount >= threshold:
                rejection = Rejection(
                    "CreditEntrustedPaymentRequired", (line_id, amount, threshold)
                )
            if rejection is None and payee >= 0 and invoice == NO_HASH:
                rejection = Rejection("CreditInvoiceHashMissing", (line_id,))
            if rejection is None and payee >= 0:
                rejection = self.model.rules.rejection(payee_address)

            payouts = [] if payee < 0 else [(line_id, payee_address, amount)]
            if not self.execute(facility, "drawdown", args, actor, rejection, payouts):
                return
            line.interest.draw(self.model.day, amount)
            self.model.drawdown_count += 1
            drawdown_id = self.model.drawdown_count
            if payee < 0:
                self.model.drawdowns[drawdown_id] = (line_id, amount)
                line.locked += amount
                self.model.total_locked += amount
            else:
                self.model.drawdowns[drawdown_id] = (line_id, None)
                self.move_tokens(facility.address, payee_address, amount)

        def drawable_rejection(self, line: LineRecord, amount: int) -> Rejection | None:
            """Predict the checks of a drawdown on an active line, in the contract's order."""
            line_id = line.line_id
            if rejection := self.frozen_rejection(line):
                return rejection
            if self.model.day > line.maturity:
                return Rejection(
                    "CreditLinePastMaturity", (line_id, day_number(line.maturity), self.today)
                )
            if line.interest.overdue_interest_fen:
                return Rejection(
                    "CreditInterestOverdue", (line_id, line.interest.overdue_interest_fen)
                )
            if line.review_flagged and self.model.policy[4]:
                return Rejection("CreditReviewRequired", (line_id, line.cycles))
            line_room, pool_room = self.model.room(line)
            if amount > line_room:
                return Rejection("CreditLimitExceeded", (line_id, line_room, amount))
            if pool_room is not None and amount > pool_room:
                return Rejection("CreditPoolLimitExceeded", (line.pool, line_id, pool_room, amount))
            return None

        # ---- repayments ------------------------------------------------------------------------

        @rule(
            pick=LINE_PICKS,
            method=weighted((4, "repay"), (1, "repayInterest"), (2, "payoff")),
            kind=weighted((6, "share"), (1, "over"), (1, "zero")),
            per_mille=PER_MILLE,
            caller=CALLERS,
            wait=WAITS,
        )
        def repay(self, pick, method, kind, per_mille, caller, wait):
            if wait:
                self.advance_clock(wait, per_mille, per_mille % 120 + 1)
            line_id = self.pick_line(pick, ACTIVE, DEFAULTED)
            line = self.model.lines.get(line_id)
            actor = self.actor(caller, "operator")
            owed = self.owed(line) if line and line.status in ACCRUING else 0
            rejection = self.lacks(actor, "OPERATOR")
            if method == "repay":
                amount = {"share": max(owed * per_mille // 1000, 1), "over": owed + 1, "zero": 0}[
                    kind
                ]
                args = [next_request_id(), line_id, amount]
                if rejection is None and amount == 0:
                    rejection = Rejection("CreditAmountZero", ())
                rejection = rejection or self.line_in(line_id, ACTIVE, DEFAULTED)
                if rejection is None and amount > owed:
                    rejection = Rejection("CreditRepaymentExceedsOwed", (line_id, amount, owed))
            else:
                args = [next_request_id(), line_id]
                rejection = rejection or self.line_in(line_id, ACTIVE, DEFAULTED)
                if rejection is None:
                    if method == "repayInterest":
                        interest = line.interest
                        amount = interest.overdue_interest_fen + interest.interest_due_fen
                    else:
                        amount = owed
                    if amount == 0:
                        rejection = Rejection("CreditNothingOwed", (line_id,))
            if not self.execute(facility, method, args, actor, rejection):
                return
            had_principal = line.principal > 0
            line.interest.repay(self.model.day, amount)
            self.move_tokens(address_of[actor], facility.address, amount)
            self.after_repayment(line, had_principal)

        # ---- the fund-flow lock ----------------------------------------------------------------

        def pick_drawdown(self, pick: int) -> int:
            """Return a drawdown with locked money, another drawdown or one that does not exist."""
            locked = sorted(d for d, (_, amount) in self.model.drawdowns.items() if amount)
            others = sorted(set(self.model.drawdowns) - set(locked))
            choices = locked * 3 + others + [self.model.drawdown_count + 1]
            return choices[pick % len(choices)]

        def payout_rejection(
            self, model: FacilityModel, drawdown_id, payee, amount, invoice, actor
        ) -> Rejection | None:
            """Predict `_payLocked`'s checks, in the contract's order."""
            line_id, locked = model.drawdowns.get(drawdown_id, (0, None))
            if locked is None:
                return Rejection("FundFlowDrawdownNotLocked", (drawdown_id,))
            line = model.lines[line_id]
            if self.lacks(actor, "OPERATOR") and actor not in line.delegates:
                return Rejection("FundFlowNotPayoutDelegate", (line_id, address_of[actor]))
            if rejection := self.line_in(line_id, ACTIVE):
                return rejection
            if rejection := self.frozen_rejection(line):
                return rejection
            if amount == 0:
                return Rejection("CreditAmountZero", ())
            if invoice == NO_HASH:
                return Rejection("CreditInvoiceHashMissing", (line_id,))
            if amount > locked:
                return Rejection("FundFlowLockedBalanceInsufficient", (drawdown_id, locked, amount))
            return model.rules.rejection(payee)

        def apply_payout(self, model: FacilityModel, drawdown_id, payee, amount):
            line_id, locked = model.drawdowns[drawdown_id]
            model.drawdowns[drawdown_id] = (line_id, locked - amount)
            model.lines[line_id].locked -= amount
            model.total_locked -= amount
            model.balances[facility.address] -= amount
            model.balances[payee] += amount

        @rule(
            items=st.lists(
                st.tuples(
                    st.integers(0, 50),
                    st.integers(0, len(payees) - 1),
                    st.integers(0, 1100),
                    weighted((9, INVOICE), (1, NO_HASH)),
                ),
                min_size=1,
                max_size=3,
            ),
            batch=st.booleans(),
            caller=weighted((6, None), (3, "borrower"), *((1, actor) for actor in ACTORS)),
        )
        def pay_from_locked(self, items, batch, caller):
            actor = self.actor(caller, "operator")
            trial = copy.deepcopy(self.model)
            payouts = []
            expected = []
            rejection = None
            for pick, payee_index, per_mille, invoice in items if batch else items[:1]:
                drawdown_id = self.pick_drawdown(pick)
                payee = payees[payee_index]
                _, locked = trial.drawdowns.get(drawdown_id, (0, None))
                amount = (locked or 0) * per_mille // 1000
                payouts.append((drawdown_id, payee, amount, invoice))
                rejection = rejection or self.payout_rejection(
                    trial, drawdown_id, payee, amount, invoice, actor
                )
                if rejection is None:
                    self.apply_payout(trial, drawdown_id, payee, amount)
                    expected.append((trial.drawdowns[drawdown_id][0], payee, amount))
            if batch:
                method, args = "payFromLockedBatch", [next_request_id(), payouts]
            else:
                method, args = "payFromLocked", [next_request_id(), *payouts[0]]
            if self.execute(facility, method, args, actor, rejection, expected):
                self.model = trial

        @rule(pick=st.integers(0, 50), per_mille=PER_MILLE, caller=CALLERS)
        def repay_from_locked(self, pick, per_mille, caller):
            actor = self.actor(caller, "operator")
            drawdown_id = self.pick_drawdown(pick)
            line_id, locked = self.model.drawdowns.get(drawdown_id, (0, None))
            amount = max((locked or 0) * per_mille // 1000, 1)
            args = [next_request_id(), drawdown_id, amount]
            rejection = self.lacks(actor, "OPERATOR")
            if rejection is None and locked is None:
                rejection = Rejection("FundFlowDrawdownNotLocked", (drawdown_id,))
            if rejection is None and amount > locked:
                rejection = Rejection(
                    "FundFlowLockedBalanceInsufficient", (drawdown_id, locked, amount)
                )
            line = self.model.lines.get(line_id)
            rejection = rejection or self.line_in(line_id, ACTIVE, DEFAULTED)
            if rejection is None and amount > self.owed(line):
                rejection = Rejection(
                    "CreditRepaymentExceedsOwed", (line_id, amount, self.owed(line))
                )
            if self.execute(facility, "repayFromLocked", args, actor, rejection):
                self.return_locked(line, drawdown_id, amount)

        def return_locked(self, line: LineRecord, drawdown_id: int, amount: int):
            line_id, locked = self.model.drawdowns[drawdown_id]
            self.model.drawdowns[drawdown_id] = (line_id, locked - amount)
            line.locked -= amount
            self.model.total_locked -= amount
            had_principal = line.principal > 0
            line.interest.repay(self.model.day, amount)
            self.after_repayment(line, had_principal)

        def return_all_locked(self, line: LineRecord):
            """Return a defaulted line's locked money as repayment, as far as it owes any."""
            for drawdown_id, (owner, locked) in sorted(self.model.drawdowns.items()):
                amount = min(locked or 0, self.owed(line))
                if owner != line.line_id or amount == 0:
                    continue
                args = [next_request_id(), drawdown_id, amount]
                self.execute(facility, "repayFromLocked", args, "operator", None, counted=False)
                self.return_locked(line, drawdown_id, amount)

        @rule(pick=LINE_PICKS, allowed=st.booleans(), caller=CALLERS)
        def set_payout_delegate(self, pick, allowed, caller):
            line_id = self.pick_line(pick)
            actor = self.actor(caller, "operator")
            args = [next_request_id(), line_id, address_of["borrower"], allowed]
            rejection = self.lacks(actor, "OPERATOR")
            if rejection is None:
                # A line that is over can never pay out again, so its delegates cannot change.
                rejection = self.line_in(line_id, APPLIED, APPROVED, ACTIVE, DEFAULTED)
            if self.execute(facility, "setPayoutDelegate", args, actor, rejection):
                delegates = self.model.lines[line_id].delegates
                if allowed:
                    delegates.add("borrower")
                else:
                    delegates.discard("borrower")

        # ---- limits, renewal and review --------------------------------------------------------

        @rule(
            pick=LINE_PICKS,
            method=weighted((3, "changeLimit"), (2, "proposeLimitChange"), (2, "approve")),
            change_bps=st.one_of(
                st.integers(-2200, 2200), st.integers(-9000, 9000), st.sampled_from([0, 2200])
            ),
            caller=CALLERS,
        )
        def change_limit(self, pick, method, change_bps, caller):
            line_id = self.pick_line(pick, ACTIVE)
            line = self.model.lines.get(line_id)
            current = line.limit if line else 1_000_000
            limit = max(current * (10_000 + change_bps) // 10_000, 1)
            actor = self.actor(caller, "officer")
            rejection = self.lacks(actor, "CREDIT_OFFICER")
            rejection = rejection or self.line_in(line_id, ACTIVE)
            if method == "changeLimit":
                args = [next_request_id(), line_id, limit]
                if rejection is None:
                    rejection = self.solo_limit_rejection(line, limit)
            elif method == "proposeLimitChange":
                args = [next_request_id(), line_id, limit]
                if rejection is None and limit == line.limit:
                    rejection = Rejection("CreditLimitUnchanged", (line_id, limit))
            else:
                method = "approveLimitChange"
                args = [next_request_id(), line_id]
                pending = line.pending_limit if line else None
                if caller is None and pending and pending[1] == "officer":
                    actor = "second_officer"
                    rejection = self.lacks(actor, "CREDIT_OFFICER") or rejection
                if rejection is None and pending is None:
                    rejection = Rejection("CreditNoPendingLimitChange", (line_id,))
                if rejection is None and pending[1] == actor:
                    rejection = Rejection(
                        "CreditSecondOfficerRequired", (line_id, address_of[actor])
                    )
            if not self.execute(facility, method, args, actor, rejection):
                return
            if method == "proposeLimitChange":
                line.pending_limit = (limit, actor)
                return
            if method == "approveLimitChange":
                limit = line.pending_limit[0]
                line.pending_limit = None
            self.set_limit(line, limit)

        def set_limit(self, line: LineRecord, limit: int):
            line.limit = limit
            line.last_limit_change_day = self.today
            line.interest.change_limit(self.model.day, limit)
            line.over_limit_allowed = line.principal > limit

        @rule(
            pick=LINE_PICKS,
            extension_days=st.one_of(st.integers(1, 200), st.just(0)),
            rate_bps=st.one_of(st.just(0), st.integers(1, 2400), st.just(10_001)),
            effective_offset=st.integers(-2, 40),
            change_bps=st.one_of(st.none(), st.integers(-2200, 2200), st.integers(-4000, 4000)),
            caller=CALLERS,
        )
        def renew(self, pick, extension_days, rate_bps, effective_offset, change_bps, caller):
            line_id = self.pick_line(pick, ACTIVE)
            line = self.model.lines.get(line_id)
            actor = self.actor(caller, "officer")
            current_maturity = line.maturity if line else self.model.day
            maturity = current_maturity + timedelta(days=extension_days)
            limit = 0
            if change_bps is not None and line:
                limit = max(line.limit * (10_000 + change_bps) // 10_000, 1)
            effective = self.model.day + timedelta(days=effective_offset)
            args = [
                next_request_id(),
                line_id,
                day_number(maturity),
                limit,
                rate_bps,
                day_number(effective),
            ]
            rejection = self.lacks(actor, "CREDIT_OFFICER")
            rejection = rejection or self.line_in(line_id, ACTIVE)
            if rejection is None:
                rejection = self.renewal_rejection(line, maturity, limit, rate_bps, effective)
            if not self.execute(facility, "renewLine", args, actor, rejection):
                return
            new_limit = limit if limit and limit != line.limit else None
            line.interest.renew(
                self.model.day,
                maturity,
                rate_bps or None,
                effective if rate_bps else None,
                new_limit,
            )
            line.maturity = maturity
            if rate_bps:
                line.pending_rate_day = effective if effective > self.model.day else None
            if new_limit:
                self.set_limit(line, new_limit)

        def renewal_rejection(self, line, maturity, limit, rate_bps, effective):
            line_id = line.line_id
            if self.model.day > line.maturity:
                return Rejection(
                    "CreditLinePastMaturity", (line_id, day_number(line.maturity), self.today)
                )
            if maturity <= line.maturity:
                return Rejection(
                    "CreditMaturityInvalid", (day_number(maturity), day_number(line.maturity))
                )
            if rate_bps > RATE_LIMIT_BPS:
                return Rejection("CreditRateInvalid", (rate_bps,))
            if rate_bps and effective < self.model.day:
                return Rejection(
                    "CreditRateEffectiveDayInvalid", (line_id, day_number(effective), self.today)
                )
            if (
                limit
                and limit != line.limit
                and (rejection := self.solo_limit_rejection(line, limit))
            ):
                return rejection
            pending = line.pending_rate_day
            if rate_bps and pending and effective > pending:
                return Rejection(
                    "CreditRateChangePending", (line_id, day_number(pending), day_number(effective))
                )
            return None

        # ---- freezes, review, default, write-off and closure -----------------------------------

        @rule(
            pick=LINE_PICKS,
            by_regulator=st.booleans(),
            freeze=st.booleans(),
            caller=CALLERS,
        )
        def freeze_line(self, pick, by_regulator, freeze, caller):
            line_id = self.pick_line(pick, ACTIVE, DEFAULTED)
            line = self.model.lines.get(line_id)
            if by_regulator:
                method = "regulatorFreezeLine" if freeze else "regulatorUnfreezeLine"
                actor = self.actor(caller, "regulator")
                rejection = self.lacks(actor, "REGULATOR")
            else:
                method = "freezeLine" if freeze else "unfreezeLine"
                actor = self.actor(caller, "officer")
                rejection = self.lacks(actor, "CREDIT_OFFICER")
            rejection = rejection or self.line_in(line_id, ACTIVE, DEFAULTED)
            if rejection is None and line.frozen[by_regulator] == freeze:
                rejection = Rejection("CreditFreezeUnchanged", (line_id, freeze))
            if self.execute(facility, method, [next_request_id(), line_id], actor, rejection):
                line.frozen[by_regulator] = freeze

        @rule(
            action=weighted(
                (2, "clearReviewFlag"),
                (1, "declareDefault"),
                (2, "writeOff"),
                (3, "closeLine"),
            ),
            pick=LINE_PICKS,
            caller=CALLERS,
        )
        def line_decision(self, action, pick, caller):
            preferred = {
                "clearReviewFlag": [ACTIVE],
                "declareDefault": [ACTIVE],
                "writeOff": [DEFAULTED],
                "closeLine": [ACTIVE, DEFAULTED, WRITTEN_OFF],
            }
            line_id = self.pick_line(pick, *preferred[action])
            line = self.model.lines.get(line_id)
            actor = self.actor(caller, "officer")
            if action == "writeOff" and line and line.status == DEFAULTED and pick % 2 == 0:
                # The contract writes a line off only once its locked money was returned.
                self.return_all_locked(line)
            rejection = self.lacks(actor, "CREDIT_OFFICER")
            if action in ("clearReviewFlag", "declareDefault"):
                rejection = rejection or self.line_in(line_id, ACTIVE)
            elif action == "writeOff":
                rejection = rejection or self.line_in(line_id, DEFAULTED)
                if rejection is None and line.locked:
                    rejection = Rejection("FundFlowLockedBalanceRemaining", (line_id, line.locked))
            else:
                rejection = rejection or self.line_in(line_id, ACTIVE, DEFAULTED, WRITTEN_OFF)
                if rejection is None and line.locked:
                    rejection = Rejection("FundFlowLockedBalanceRemaining", (line_id, line.locked))
                if rejection is None and line.status != WRITTEN_OFF and self.owed(line):
                    rejection = Rejection("CreditBalanceOutstanding", (line_id, self.owed(line)))
            if not self.execute(facility, action, [next_request_id(), line_id], actor, rejection):
                return
            if action == "clearReviewFlag":
                line.review_flagged = False
                line.reviewed_cycles = line.cycles
            elif action == "declareDefault":
                line.status = DEFAULTED
            elif action == "writeOff":
                line.written_off = self.owed(line)
                line.interest = None
                self.leave_terminal(line, WRITTEN_OFF)
            else:
                self.leave_terminal(line, CLOSED)

        @rule(
            pick=LINE_PICKS,
            kind=weighted((4, "share"), (1, "over"), (1, "zero")),
            per_mille=PER_MILLE,
            caller=CALLERS,
        )
        def recover(self, pick, kind, per_mille, caller):
            line_id = self.pick_line(pick, WRITTEN_OFF)
            line = self.model.lines.get(line_id)
            outstanding = line.written_off if line else 0
            amount = {
                "share": max(outstanding * per_mille // 1000, 1),
                "over": outstanding + 1,
                "zero": 0,
            }[kind]
            actor = self.actor(caller, "operator")
            rejection = self.lacks(actor, "OPERATOR")
            if rejection is None and amount == 0:
                rejection = Rejection("CreditAmountZero", ())
            rejection = rejection or self.line_in(line_id, WRITTEN_OFF)
            if rejection is None and amount > outstanding:
                rejection = Rejection("CreditRepaymentExceedsOwed", (line_id, amount, outstanding))
            args = [next_request_id(), line_id, amount]
            if self.execute(facility, "recover", args, actor, rejection):
                line.written_off -= amount
                self.move_tokens(address_of[actor], facility.address, amount)

        # ---- pools, liquidity and policy -------------------------------------------------------

        @rule(
            action=weighted((1, "createPool"), (2, "changePoolLimit"), (3, "add"), (2, "remove")),
            pool_pick=st.integers(0, MAX_POOLS + 1),
            line_pick=LINE_PICKS,
            limit=st.one_of(st.integers(1, 400_000_000), st.just(0)),
            caller=CALLERS,
        )
        def pools(self, action, pool_pick, line_pick, limit, caller):
            actor = self.actor(caller, "officer")
            rejection = self.lacks(actor, "CREDIT_OFFICER")
            pool_count = max(self.model.pools)
            pool_id = pool_pick if pool_pick <= pool_count + 1 else 0
            line_id = self.pick_line(line_pick, APPROVED, ACTIVE)
            line = self.model.lines.get(line_id)
            pool_missing = Rejection("CreditPoolNotFound", (pool_id,))
            if action == "createPool":
                if pool_count >= MAX_POOLS:
                    action = "changePoolLimit"
                else:
                    args = [next_request_id(), limit]
                    if rejection is None and limit == 0:
                        rejection = Rejection("CreditAmountZero", ())
            if action == "changePoolLimit":
                args = [next_request_id(), pool_id, limit]
                if rejection is None and pool_id not in self.model.pools:
                    rejection = pool_missing
            elif action == "add":
                action = "addPoolMember"
                args = [next_request_id(), pool_id, line_id]
                if rejection is None and pool_id not in self.model.pools:
                    rejection = pool_missing
                rejection = rejection or self.line_in(line_id, APPROVED, ACTIVE)
                if rejection is None and line.pool:
                    rejection = Rejection("CreditLineAlreadyInPool", (line_id, line.pool))
            elif action == "remove":
                action = "removePoolMember"
                args = [next_request_id(), line_id]
                if rejection is None and line is None:
                    rejection = Rejection("CreditLineNotFound", (line_id,))
                if rejection is None and not line.pool:
                    rejection = Rejection("CreditLineNotInPool", (line_id,))
            if not self.execute(facility, action, args, actor, rejection):
                return
            if action == "createPool":
                self.model.pools[pool_count + 1] = limit
            elif action == "changePoolLimit":
                self.model.pools[pool_id] = limit
            elif action == "addPoolMember":
                line.pool = pool_id
            else:
                line.pool = 0

        @rule(
            action=weighted((3, "fundLiquidity"), (3, "withdrawLiquidity"), (2, "updatePolicy")),
            kind=weighted((4, "share"), (1, "over"), (1, "zero")),
            per_mille=st.integers(1, 1000),
            to=st.sampled_from(["treasury", "outsider"]),
            caller=CALLERS,
        )
        def liquidity(self, action, kind, per_mille, to, caller):
            """Fund or withdraw liquidity, or change the policy."""
            if action == "updatePolicy":
                self.update_policy(POLICIES[per_mille % len(POLICIES)], caller)
                return
            actor = self.actor(caller, "treasury")
            rejection = self.lacks(actor, "TREASURY")
            if action == "fundLiquidity":
                balance = self.model.balances[address_of[actor]]
                base = balance // 1000
            else:
                balance = self.model.liquidity()
                base = balance // 50
            amount = {"share": base * per_mille // 1000 + 1, "over": balance + 1, "zero": 0}[kind]
            if rejection is None and amount == 0:
                rejection = Rejection("CreditAmountZero", ())
            if action == "fundLiquidity":
                args = [next_request_id(), amount]
                if rejection is None and amount > balance:
                    rejection = Rejection(
                        "ERC20InsufficientBalance", (address_of[actor], balance, amount)
                    )
                if self.execute(facility, action, args, actor, rejection):
                    self.move_tokens(address_of[actor], facility.address, amount)
                return
            args = [next_request_id(), address_of[to], amount]
            if rejection is None and amount > balance:
                rejection = Rejection("CreditInsufficientLiquidity", (balance, amount))
            if self.execute(facility, action, args, actor, rejection):
                self.move_tokens(facility.address, address_of[to], amount)

        def update_policy(self, policy, caller):
            actor = self.actor(caller, "admin")
            rejection = self.lacks(actor, "DEFAULT_ADMIN")
            threshold, max_bps, _, cycle_threshold, _ = policy
            if rejection is None and max_bps > 10_000:
                rejection = Rejection("CreditPolicyInvalid", ("max limit change above 10000 bps",))
            if rejection is None and cycle_threshold == 0:
                rejection = Rejection("CreditPolicyInvalid", ("cycle threshold must be positive",))
            if rejection is None and threshold == 0:
                rejection = Rejection(
                    "CreditPolicyInvalid", ("entrusted threshold must be positive",)
                )
            if self.execute(facility, "updatePolicy", [policy], actor, rejection):
                self.model.policy = policy

        @precondition(lambda self: self.model.used_requests)
        @rule(pick=st.integers(0, 10**6), caller=CALLERS)
        def reuse_request_id(self, pick, caller):
            """Send a drawdown under a request id used before; it must never act twice."""
            actor = self.actor(caller, "operator")
            request_id = self.model.used_requests[pick % len(self.model.used_requests)]
            line_id = sorted(self.model.lines)[0]
            args = [request_id, line_id, 1, ZERO_ADDRESS, NO_HASH]
            rejection = self.lacks(actor, "OPERATOR") or Rejection(
                "CreditRequestAlreadyUsed", (request_id,)
            )
            self.execute(facility, "drawdown", args, actor, rejection)

        # ---- the payee registry ----------------------------------------------------------------

        @rule(
            action=weighted(
                (2, "registerPayee"),
                (2, "changePayeeCategory"),
                (2, "block"),
                (2, "freeze"),
            ),
            payee=st.integers(0, len(payees)),
            category=st.sampled_from(categories),
            caller=CALLERS,
        )
        def change_registry(self, action, payee, category, caller):
            model = self.model.rules
            address = ZERO_ADDRESS if payee == len(payees) else payees[payee]
            registered = model.payees.get(address)
            if action == "registerPayee":
                actor = self.actor(caller, "operator")
                args = [address, category, keccak(b"registration")]
                rejection = self.lacks(actor, "REGISTRAR")
                if rejection is None and address == ZERO_ADDRESS:
                    rejection = Rejection("FundFlowPayeeInvalid", (address,))
                if rejection is None and category == 0:
                    rejection = Rejection("FundFlowCategoryInvalid", (category,))
                if rejection is None and registered:
                    rejection = Rejection("FundFlowPayeeAlreadyRegistered", (address,))
                if self.execute(rules, action, args, actor, rejection):
                    model.payees[address] = (category, False)
                    model.version += 1
                return
            if action == "changePayeeCategory":
                actor = self.actor(caller, "regulator" if category % 2 else "operator")
                args = [address, category]
                rejection = None
                if actor not in ROLE_HOLDERS["REGISTRAR"] | ROLE_HOLDERS["REGULATOR"]:
                    rejection = self.lacks(actor, "REGISTRAR")
                if rejection is None and category == 0:
                    rejection = Rejection("FundFlowCategoryInvalid", (category,))
                if rejection is None and registered is None:
                    rejection = Rejection("FundFlowPayeeNotRegistered", (address,))
                if (
                    rejection is None
                    and registered[0] in model.blocked
                    and actor not in ROLE_HOLDERS["REGULATOR"]
                ):
                    rejection = Rejection("FundFlowCategoryBlocked", (address, registered[0]))
                if self.execute(rules, action, args, actor, rejection):
                    model.payees[address] = (category, registered[1])
                    model.version += 1
                return
            actor = self.actor(caller, "regulator")
            rejection = self.lacks(actor, "REGULATOR")
            if action == "block":
                block = category not in model.blocked
                method = "blockCategory" if block else "unblockCategory"
                args = [category, keccak(b"notice")] if block else [category]
                if rejection is None and category == 0:
                    rejection = (
                        Rejection("FundFlowCategoryInvalid", (0,))
                        if block
                        else Rejection("FundFlowCategoryStateUnchanged", (0, False))
                    )
                if self.execute(rules, method, args, actor, rejection):
                    if block:
                        model.blocked.add(category)
                    else:
                        model.blocked.discard(category)
                    model.version += 1
                return
            freeze = not (registered and registered[1])
            method = "freezePayee" if freeze else "unfreezePayee"
            args = [address, keccak(b"notice")] if freeze else [address]
            if rejection is None and registered is None:
                rejection = Rejection("FundFlowPayeeNotRegistered", (address,))
            if self.execute(rules, method, args, actor, rejection):
                model.payees[address] = (registered[0], freeze)
                model.version += 1

        # ---- invariants ------------------------------------------------------------------------

        @invariant()
        def state_matches_model(self):
            model = self.model
            line_ids = sorted(model.lines)
            pool_ids = sorted(model.pools)
            drawdown_ids = sorted(model.drawdowns)
            calls = [
                (token, "totalSupply", []),
                (facility, "liquidity", []),
                (facility, "totalLocked", []),
                (facility, "lineCount", []),
                (rules, "rulesVersion", []),
                *((token, "balanceOf", [holder]) for holder in world.holders),
                *((facility, "lineState", [line_id, self.today]) for line_id in line_ids),
                *((facility, "pool", [pool_id]) for pool_id in pool_ids),
                *((facility, "lockedBalance", [drawdown_id]) for drawdown_id in drawdown_ids),
            ]
            supply, liquidity, total_locked, line_count, version, *rest = reader.read(calls)
            balances = rest[: len(world.holders)]
            rest = rest[len(world.holders) :]
            states = rest[: len(line_ids)]
            pools = rest[len(line_ids) : len(line_ids) + len(pool_ids)]
            locked = rest[len(line_ids) + len(pool_ids) :]

            # 2. Tokens: nothing appears or disappears, and the facility's balance reconciles.
            assert supply == model.total_supply
            assert sum(balances) == supply, "tracked balances do not add up to the supply"
            assert balances == [model.balances[holder] for holder in world.holders]
            assert balances[0] == liquidity + total_locked
            assert liquidity == model.liquidity()
            assert total_locked == model.total_locked
            assert total_locked == sum(amount or 0 for _, amount in model.drawdowns.values())
            assert line_count == model.line_count
            assert version == model.rules.version

            for drawdown_id, on_chain in zip(drawdown_ids, locked, strict=True):
                line_id, amount = model.drawdowns[drawdown_id]
                expected = (line_id, amount) if amount is not None else (0, 0)
                assert tuple(on_chain) == expected, f"locked balance of drawdown {drawdown_id}"
            for pool_id, on_chain in zip(pool_ids, pools, strict=True):
                expected = (model.pools[pool_id], model.pool_used(pool_id))
                assert tuple(on_chain) == expected, f"pool {pool_id}"
            for line_id, state in zip(line_ids, states, strict=True):
                self.check_line(model.lines[line_id], state)

        def check_line(self, line: LineRecord, state: dict):
            line_id = line.line_id
            # Recovery lowers what a written-off line still owes, and closure ends it for good.
            assert state["writtenOffOutstanding"] == line.written_off, f"written off {line_id}"
            state = {
                name: value for name, value in state.items() if name != "writtenOffOutstanding"
            }
            final = self.final_states.get(line_id)
            if final is not None and final["status"] == line.status:
                # 5. A line that is over never changes again.
                assert state == final, f"line {line_id} changed after it ended"
                return
            assert state["status"] == line.status, f"status of line {line_id}"
            assert [state["frozenByBank"], state["frozenByRegulator"]] == line.frozen, line_id
            assert state["reviewFlagged"] == line.review_flagged, f"review flag of line {line_id}"
            assert state["revolvingCycles"] == line.cycles, f"cycles of line {line_id}"
            assert state["maturityDay"] == day_number(line.maturity), f"maturity of {line_id}"
            assert state["poolId"] == line.pool, f"pool of line {line_id}"
            assert state["limit"] == line.limit, f"limit of line {line_id}"
            assert state["locked"] == line.locked, f"locked money of line {line_id}"
            interest = line.interest
            if interest is not None and line.status in ACCRUING:
                # 3. Interest to the fen, against the reference model.
                day = self.model.day
                interest.advance_to(day)
                assert state["principal"] == interest.principal_fen, f"principal of {line_id}"
                assert state["interestDue"] == interest.interest_due_fen, f"due of {line_id}"
                assert state["overdueInterest"] == interest.overdue_interest_fen, line_id
                assert state["accruedInterest"] == round_half_up(interest.accrued_exact), line_id
                assert state["payoffAmount"] == interest.payoff_amount(day), line_id
                assert state["rateBps"] == interest.rate_bps_on(day), f"rate of line {line_id}"
            else:
                for name in ("principal", "interestDue", "overdueInterest", "payoffAmount"):
                    assert state[name] == 0, f"{name} of line {line_id}"
            if line.status in (APPLIED, APPROVED, REJECTED):
                assert state["rateBps"] == line.rate_bps, f"rate of line {line_id}"
            # 1. Principal within the limit, unless a limit change put it below principal.
            if state["principal"] > state["limit"]:
                assert line.over_limit_allowed, f"principal above the limit of line {line_id}"
            if line.status == ACTIVE:
                line_room, pool_room = self.model.room(line)
                available = line_room if pool_room is None else min(line_room, pool_room)
                assert state["available"] == available, f"available on line {line_id}"
            if line.status in TERMINAL:
                self.final_states[line_id] = state

    return FacilityMachine


@pytest.fixture
def run_machine(chain, facility, rules, token, facility_world):
    """Return a function that runs the machine with the given settings and prints its outcomes."""

    def run(run_settings):
        outcomes = Counter()
        machine = build_machine(chain, facility, rules, token, facility_world, outcomes)
        try:
            run_state_machine_as_test(machine, settings=run_settings)
        finally:
            # Every rule records exactly one outcome, so the outcomes count the steps run.
            examples = outcomes.pop("examples")
            reliability_report.COUNTS["examples"] += examples
            reliability_report.COUNTS["invariant_steps"] += outcomes.total()

        print(f"\nfacility machine: {examples} examples, {outcomes.total()} steps")
        for outcome, count in sorted(outcomes.items()):
            print(f"  {count:5d}  {outcome}")

    return run


@pytest.mark.reliability
@pytest.mark.timeout(1800)
def test_facility_invariantsHoldForRandomSequences(run_machine):
    run_machine(LONG_RUN if reliability_report.FULL_RUN else DEFAULT_RUN)


# ---------------------------------------------------------------------------------------------
# Sequences the machine found, kept as plain tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["closed", "written off", "rejected"])
def test_setPayoutDelegate_revertsOnEndedLine(
    facility, operator, officer, borrower, open_line, request_id, ending
):
    """Delegates of a line that is over stay as they were: no action may change such a line."""
    opened = date(2027, 3, 1)
    line_id = open_line(100_000_000, 435, opened, opened + timedelta(days=90))
    if ending == "closed":
        facility.closeLine(request_id(), line_id, sender=officer)
        status = CLOSED
    elif ending == "written off":
        facility.declareDefault(request_id(), line_id, sender=officer)
        facility.writeOff(request_id(), line_id, sender=officer)
        status = WRITTEN_OFF
    else:
        receipt = facility.applyForLine(
            request_id(),
            borrower,
            keccak(b"application"),
            1_000_000,
            435,
            day_number(opened + timedelta(days=90)),
            sender=operator,
        )
        line_id = receipt.events[0].lineId
        facility.rejectLine(request_id(), line_id, sender=officer)
        status = REJECTED

    with reverts_with(facility.CreditLineStatusInvalid, lineId=line_id, status=status):
        facility.setPayoutDelegate(request_id(), line_id, borrower, True, sender=operator)


@pytest.mark.parametrize("ending", ["written off", "rejected"])
def test_poolMember_leavesPoolWhenLineEnds(
    facility, operator, officer, borrower, registered_payees, open_line, request_id, ending
):
    """A line that is written off or rejected leaves its pool, as a closed line does."""
    opened = date(2027, 3, 1)
    maturity = opened + timedelta(days=90)
    pool_id = facility.createPool(request_id(), 50_000_000, sender=officer).events[0].poolId
    if ending == "written off":
        line_id = open_line(100_000_000, 435, opened, maturity)
        facility.addPoolMember(request_id(), pool_id, line_id, sender=officer)
        facility.drawdown(
            request_id(), line_id, 2_000_000, registered_payees[0], INVOICE, sender=operator
        )
        facility.declareDefault(request_id(), line_id, sender=officer)
        receipt = facility.writeOff(request_id(), line_id, sender=officer)
    else:
        applied = facility.applyForLine(
            request_id(),
            borrower,
            keccak(b"application"),
            1_000_000,
            435,
            day_number(maturity),
            sender=operator,
        )
        line_id = applied.events[0].lineId
        facility.approveLine(request_id(), line_id, sender=officer)
        facility.addPoolMember(request_id(), pool_id, line_id, sender=officer)
        receipt = facility.rejectLine(request_id(), line_id, sender=officer)

    removed = receipt.events.filter(facility.PoolMemberRemoved)
    assert [(event.poolId, event.lineId, event.poolUsedAfter) for event in removed] == [
        (pool_id, line_id, 0)
    ]
    assert facility.lineState(line_id, day_number(opened)).poolId == 0
    assert facility.pool(pool_id) == (50_000_000, 0)
    with reverts_with(facility.CreditLineNotInPool, lineId=line_id):
        facility.removePoolMember(request_id(), line_id, sender=officer)
