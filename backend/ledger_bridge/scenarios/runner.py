"""The replay: each step's writes sent through the bridge at the step's moment on the chain.

For every step of the timeline the runner moves the chain's time to the
step's moment and sends the step's writes one after the other through the
bridge's HTTP API. It waits until each operation is confirmed or failed,
then checks the step's expectations against what the bridge reports. A
step whose write fails stops there, so a later write of the same step is
not sent. The run goes on with the next step either way, and every outcome
becomes a check in the report.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from eth_utils import keccak

from ledger_bridge.money import format_amount
from ledger_bridge.scenarios.checks import UNCHANGED_RULE_ERRORS, StepChecker
from ledger_bridge.scenarios.client import BridgeClient, Outcome
from ledger_bridge.scenarios.clock import ChainClock
from ledger_bridge.scenarios.model import (
    Action,
    CategoryBlock,
    ChangeLimit,
    Check,
    Drawdown,
    Freeze,
    Line,
    Payee,
    PayFromLocked,
    Payoff,
    Pool,
    PoolMembership,
    Renew,
    Repay,
    RepayInterest,
    ReturnLocked,
    Scenario,
)
from ledger_bridge.scenarios.report import build_report
from ledger_bridge.scenarios.state import OperationRecord, ScenarioState, UnresolvedReferenceError
from ledger_bridge.scenarios.timeline import Phase, Step, build_timeline

logger = logging.getLogger(__name__)


def document_hash(text: str) -> str:
    """Return the keccak256 hash that stands for an off-chain document named `text`."""
    return "0x" + keccak(text=text).hex()


class Replay:
    """Replays scenarios through one bridge on one chain, merged on one timeline."""

    def __init__(
        self,
        scenarios: Sequence[Scenario],
        client: BridgeClient,
        clock: ChainClock,
        *,
        run_id: str | None = None,
    ) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.client = client
        self.clock = clock
        self.states = [
            ScenarioState(scenario=scenario, index=index, salt=self.run_id)
            for index, scenario in enumerate(scenarios)
        ]
        self.facility_address: str | None = None
        self._checker = StepChecker(client, clock)
        self._writes = 0

    def run(self) -> list[dict[str, Any]]:
        """Perform every step and return one report per scenario, in the order given."""
        started = time.monotonic()
        timeline = build_timeline([state.scenario for state in self.states])
        for step in timeline:
            self.clock.move_to(step.moment)
            self._perform(step)
        reports = [
            build_report(state, self.client, self.clock, self.facility_address)
            for state in self.states
        ]
        seconds = round(time.monotonic() - started, 1)
        for report in reports:
            report["run"] = {"run_id": self.run_id, "steps": len(timeline), "seconds": seconds}
        return reports

    # -------------------------------------------------------------------------------------
    # Steps
    # -------------------------------------------------------------------------------------

    def _perform(self, step: Step) -> None:
        state = self.states[step.scenario_index]
        records_before = len(state.operations)
        try:
            self._dispatch(step, state)
        except UnresolvedReferenceError as error:
            state.add_check(step.describe(), step.moment, "step can run", "yes", str(error), False)
            return
        records = state.operations[records_before:]
        if isinstance(step.item, Action):
            self._checker.check_action(step, state, records, self.facility_address)
        else:
            self._checker.check_setup(step, state, records)

    def _dispatch(self, step: Step, state: ScenarioState) -> None:
        item = step.item
        if step.phase is Phase.PAYEE:
            assert isinstance(item, Payee)
            self._register_payee(step, state, item)
        elif step.phase is Phase.POOL:
            assert isinstance(item, Pool)
            self._create_pool(step, state, item)
        elif step.phase is Phase.LINE:
            assert isinstance(item, Line)
            self._open_line(step, state, item)
        else:
            assert isinstance(item, Action)
            self._act(step, state, item)

    # -------------------------------------------------------------------------------------
    # Setup
    # -------------------------------------------------------------------------------------

    def _register_payee(self, step: Step, state: ScenarioState, payee: Payee) -> None:
        address = state.address_of("payee", payee.label)
        body = {
            "address": address,
            "category": payee.category,
            "documents_hash": document_hash(f"registration documents of {payee.label}"),
        }
        if self._send(step, state, "register_payee", "bank", "/v1/payees", body).confirmed:
            state.payees[payee.label] = address

    def _create_pool(self, step: Step, state: ScenarioState, pool: Pool) -> None:
        body = {"limit": format_amount(pool.limit)}
        outcome = self._send(step, state, "create_pool", "bank", "/v1/pools", body)
        if outcome.confirmed:
            state.pools[pool.label] = int(outcome.created_ids["pool_id"])

    def _open_line(self, step: Step, state: ScenarioState, line: Line) -> None:
        body = {
            "borrower": state.address_of("borrower", line.label),
            "application_hash": document_hash(f"application of {line.label}"),
            "limit": format_amount(line.limit),
            "rate_bps": line.rate_bps,
            "maturity_date": line.maturity.isoformat(),
        }
        applied = self._send(step, state, "apply_for_line", "bank", "/v1/applications", body)
        if not applied.confirmed:
            return
        line_id = int(applied.created_ids["line_id"])
        for kind, path in (("approve_line", "approve"), ("open_line", "open")):
            outcome = self._send(step, state, kind, "bank", f"/v1/lines/{line_id}/{path}", {})
            if not outcome.confirmed:
                return
        state.lines[line.label] = line_id
        if self.facility_address is None:
            self.facility_address = outcome.operation.get("facility_address")
        if line.pool is not None:
            body = {"line_id": line_id}
            path = f"/v1/pools/{state.pool_id(line.pool)}/members"
            self._send(step, state, "add_pool_member", "bank", path, body, line_label=line.label)

    # -------------------------------------------------------------------------------------
    # Actions
    # -------------------------------------------------------------------------------------

    def _act(self, step: Step, state: ScenarioState, action: Action) -> None:
        if isinstance(action, Drawdown):
            self._drawdown(step, state, action)
        elif isinstance(action, PayFromLocked):
            line_label, drawdown_id = state.drawdown(action.drawdown)
            body = {
                "payee": state.payee(action.payee),
                "amount": format_amount(action.amount),
                "invoice_hash": document_hash(f"invoice {action.invoice}"),
            }
            path = f"/v1/drawdowns/{drawdown_id}/payouts"
            self._send(
                step,
                state,
                "pay_from_locked",
                "bank",
                path,
                body,
                line_label=line_label,
                amount_fen=action.amount,
                payee_label=action.payee,
            )
        elif isinstance(action, ReturnLocked):
            line_label, drawdown_id = state.drawdown(action.drawdown)
            body = {"amount": format_amount(action.amount)}
            path = f"/v1/drawdowns/{drawdown_id}/repayments"
            self._send(step, state, "repay_from_locked", "bank", path, body, line_label=line_label)
        elif isinstance(action, Repay):
            body = {"amount": format_amount(action.amount)}
            self._line_write(step, state, action.line, "repay", "repayments", body)
        elif isinstance(action, RepayInterest):
            self._line_write(step, state, action.line, "repay_interest", "interest-repayments", {})
        elif isinstance(action, Payoff):
            self._line_write(step, state, action.line, "payoff", "payoff", {})
        elif isinstance(action, ChangeLimit):
            self._change_limit(step, state, action)
        elif isinstance(action, Renew):
            self._line_write(step, state, action.line, "renew_line", "renewals", _renewal(action))
        elif isinstance(action, Freeze):
            self._freeze(step, state, action)
        elif isinstance(action, CategoryBlock):
            self._category_block(step, state, action)
        elif isinstance(action, PoolMembership):
            self._pool_membership(step, state, action)
        else:
            assert isinstance(action, Check)

    def _drawdown(self, step: Step, state: ScenarioState, action: Drawdown) -> None:
        body: dict[str, Any] = {"amount": format_amount(action.amount)}
        if action.mode == "entrusted":
            assert action.payee is not None and action.invoice is not None
            body["payee"] = state.payee(action.payee)
            body["invoice_hash"] = document_hash(f"invoice {action.invoice}")
        outcome = self._line_write(
            step,
            state,
            action.line,
            "drawdown",
            "drawdowns",
            body,
            amount_fen=action.amount,
            payee_label=action.payee,
        )
        if outcome.confirmed and action.ref is not None:
            state.drawdowns[action.ref] = (action.line, int(outcome.created_ids["drawdown_id"]))

    def _change_limit(self, step: Step, state: ScenarioState, action: ChangeLimit) -> None:
        body = {"limit": format_amount(action.limit)}
        if action.approval == "solo":
            self._line_write(step, state, action.line, "change_limit", "limit-changes", body)
            return
        proposed = self._line_write(
            step, state, action.line, "propose_limit_change", "limit-change-proposals", body
        )
        if proposed.confirmed:
            path = "limit-change-proposals/approve"
            self._line_write(step, state, action.line, "approve_limit_change", path, {})

    def _freeze(self, step: Step, state: ScenarioState, action: Freeze) -> None:
        line_id = state.line_id(action.line)
        if action.by == "bank":
            path = f"/v1/lines/{line_id}/{action.action}"
            self._send(
                step, state, f"{action.action}_line", "bank", path, {}, line_label=action.line
            )
            return
        path = f"/v1/regulator/lines/{line_id}/{action.action}"
        body = {} if self.facility_address is None else {"facility": self.facility_address}
        kind = f"regulator_{action.action}_line"
        self._send(step, state, kind, "regulator", path, body, line_label=action.line)

    def _category_block(self, step: Step, state: ScenarioState, action: CategoryBlock) -> None:
        blocking = action.action == "block_category"
        verb = "block" if blocking else "unblock"
        body = {"reason_hash": document_hash(f"decision {action.reason}")} if blocking else {}
        path = f"/v1/regulator/categories/{action.category}/{verb}"
        outcome = self._send(step, state, action.action, "regulator", path, body)
        in_force = outcome.confirmed or outcome.error_name in UNCHANGED_RULE_ERRORS
        if in_force:
            state.category_changes.append((step.moment, action.category, blocking))

    def _pool_membership(self, step: Step, state: ScenarioState, action: PoolMembership) -> None:
        line_id = state.line_id(action.line)
        if action.action == "add_to_pool":
            assert action.pool is not None
            path = f"/v1/pools/{state.pool_id(action.pool)}/members"
            body: dict[str, Any] = {"line_id": line_id}
            self._send(step, state, "add_pool_member", "bank", path, body, line_label=action.line)
            return
        pool_id = self.client.read("bank", f"/v1/lines/{line_id}")["pool_id"]
        path = f"/v1/pools/{pool_id}/members/{line_id}/remove"
        self._send(step, state, "remove_pool_member", "bank", path, {}, line_label=action.line)

    # -------------------------------------------------------------------------------------
    # Sending
    # -------------------------------------------------------------------------------------

    def _line_write(
        self,
        step: Step,
        state: ScenarioState,
        line_label: str,
        kind: str,
        path_suffix: str,
        body: dict[str, Any],
        **details: Any,
    ) -> Outcome:
        path = f"/v1/lines/{state.line_id(line_label)}/{path_suffix}"
        return self._send(step, state, kind, "bank", path, body, line_label=line_label, **details)

    def _send(
        self,
        step: Step,
        state: ScenarioState,
        kind: str,
        role: str,
        path: str,
        body: dict[str, Any],
        *,
        line_label: str | None = None,
        amount_fen: int | None = None,
        payee_label: str | None = None,
    ) -> Outcome:
        """Send one write, wait for its end, and log it in the scenario's state."""
        self._writes += 1
        key = f"scenario-{self.run_id}-{state.index}-{self._writes}"
        outcome = self.client.write(role, path, body, key)
        record = OperationRecord(step, kind, line_label, outcome, amount_fen, payee_label)
        state.operations.append(record)
        logger.info(
            "%s %s %s: %s", step.moment.isoformat(), state.scenario.name, kind, outcome.describe()
        )
        return outcome


def _renewal(action: Renew) -> dict[str, Any]:
    body: dict[str, Any] = {"maturity_date": action.maturity.isoformat()}
    if action.limit is not None:
        body["limit"] = format_amount(action.limit)
    if action.rate_bps is not None and action.rate_effective is not None:
        body["rate_bps"] = action.rate_bps
        body["rate_effective_date"] = action.rate_effective.isoformat()
    return body
