"""Contract calls for each kind of operation, which role signs them and which contract they target.

An operation's payload is the validated request body in its JSON form,
with the values from the request path added by the route. The builders
here turn it into the contract function call. Calls to a facility carry the
operation's request id as their first argument. Calls to the fund-flow
rules contract have no request id, because its functions take none.

A new kind of write adds a builder, its signer role and its target here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from web3.contract import Contract
from web3.contract.contract import ContractFunction

from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.chain.values import date_to_day
from ledger_bridge.money import parse_address, parse_amount, parse_bytes32_hex
from ledger_bridge.storage.models import Operation

# A line's life
APPLY_FOR_LINE = "apply_for_line"
APPROVE_LINE = "approve_line"
REJECT_LINE = "reject_line"
OPEN_LINE = "open_line"
DRAWDOWN = "drawdown"
REPAY = "repay"
REPAY_INTEREST = "repay_interest"
PAYOFF = "payoff"
CHANGE_LIMIT = "change_limit"
PROPOSE_LIMIT_CHANGE = "propose_limit_change"
APPROVE_LIMIT_CHANGE = "approve_limit_change"
RENEW_LINE = "renew_line"
FREEZE_LINE = "freeze_line"
UNFREEZE_LINE = "unfreeze_line"
CLEAR_REVIEW_FLAG = "clear_review_flag"
DECLARE_DEFAULT = "declare_default"
WRITE_OFF = "write_off"
RECOVER = "recover"
CLOSE_LINE = "close_line"
# Fund-flow lock
PAY_FROM_LOCKED = "pay_from_locked"
PAY_FROM_LOCKED_BATCH = "pay_from_locked_batch"
REPAY_FROM_LOCKED = "repay_from_locked"
SET_PAYOUT_DELEGATE = "set_payout_delegate"
REGISTER_PAYEE = "register_payee"
CHANGE_PAYEE_CATEGORY = "change_payee_category"
# Pools and liquidity
CREATE_POOL = "create_pool"
CHANGE_POOL_LIMIT = "change_pool_limit"
ADD_POOL_MEMBER = "add_pool_member"
REMOVE_POOL_MEMBER = "remove_pool_member"
FUND_LIQUIDITY = "fund_liquidity"
WITHDRAW_LIQUIDITY = "withdraw_liquidity"
# Regulator
BLOCK_CATEGORY = "block_category"
UNBLOCK_CATEGORY = "unblock_category"
FREEZE_PAYEE = "freeze_payee"
UNFREEZE_PAYEE = "unfreeze_payee"
REGULATOR_FREEZE_LINE = "regulator_freeze_line"
REGULATOR_UNFREEZE_LINE = "regulator_unfreeze_line"

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = bytes(32)

# A builder takes the operation and the contract function to call, and returns the call.
CallBuilder = Callable[[Operation, Any], ContractFunction]


class CallTarget(StrEnum):
    """The contract an operation's transaction is sent to."""

    FACILITY = "facility"
    RULES = "rules"


@dataclass(frozen=True, slots=True)
class OperationCall:
    """The transaction of one kind of operation: its function, builder, signer and contract."""

    function: str
    builder: CallBuilder
    signer: SignerRole
    target: CallTarget = CallTarget.FACILITY


# ---------------------------------------------------------------------------------------------
# Payload readers
# ---------------------------------------------------------------------------------------------


def _line_id(operation: Operation) -> int:
    if operation.line_id is None:
        raise ValueError(f"Operation {operation.id} of kind {operation.kind} has no line id")
    return operation.line_id


def _amount(payload: Mapping[str, Any], name: str = "amount") -> int:
    return parse_amount(payload[name])


def _optional_amount(payload: Mapping[str, Any], name: str) -> int:
    """Return the amount in fen, or 0, which the contract reads as "keep the current value"."""
    value = payload.get(name)
    return 0 if value is None else parse_amount(value)


def _hash(payload: Mapping[str, Any], name: str) -> bytes:
    return bytes.fromhex(parse_bytes32_hex(payload[name])[2:])


def _day(payload: Mapping[str, Any], name: str) -> int:
    return date_to_day(date.fromisoformat(payload[name]))


def _int(payload: Mapping[str, Any], name: str) -> int:
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Payload field {name} is {value!r}, not an integer")
    return value


# ---------------------------------------------------------------------------------------------
# A line's life
# ---------------------------------------------------------------------------------------------


def _build_apply_for_line(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(
        operation.request_id,
        parse_address(payload["borrower"]),
        _hash(payload, "application_hash"),
        _amount(payload, "limit"),
        _int(payload, "rate_bps"),
        _day(payload, "maturity_date"),
    )


def _build_drawdown(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    payee = payload.get("payee")
    invoice_hash = payload.get("invoice_hash")
    return function(
        operation.request_id,
        _line_id(operation),
        _amount(payload),
        ZERO_ADDRESS if payee is None else parse_address(payee),
        ZERO_BYTES32 if invoice_hash is None else _hash(payload, "invoice_hash"),
    )


def _build_line_action(operation: Operation, function: Any) -> ContractFunction:
    """Build `function(requestId, lineId)`."""
    return function(operation.request_id, _line_id(operation))


def _build_line_amount(operation: Operation, function: Any) -> ContractFunction:
    """Build `function(requestId, lineId, amount)`."""
    return function(operation.request_id, _line_id(operation), _amount(operation.payload))


def _build_line_limit(operation: Operation, function: Any) -> ContractFunction:
    """Build `function(requestId, lineId, limit)`."""
    return function(operation.request_id, _line_id(operation), _amount(operation.payload, "limit"))


def _build_renew_line(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    rate_bps = payload.get("rate_bps")
    return function(
        operation.request_id,
        _line_id(operation),
        _day(payload, "maturity_date"),
        _optional_amount(payload, "limit"),
        0 if rate_bps is None else _int(payload, "rate_bps"),
        0 if rate_bps is None else _day(payload, "rate_effective_date"),
    )


# ---------------------------------------------------------------------------------------------
# Fund-flow lock
# ---------------------------------------------------------------------------------------------


def _payout_tuple(payout: Mapping[str, Any]) -> tuple[int, str, int, bytes]:
    return (
        _int(payout, "drawdown_id"),
        parse_address(payout["payee"]),
        _amount(payout),
        _hash(payout, "invoice_hash"),
    )


def _build_pay_from_locked(operation: Operation, function: Any) -> ContractFunction:
    drawdown_id, payee, amount, invoice_hash = _payout_tuple(operation.payload)
    return function(operation.request_id, drawdown_id, payee, amount, invoice_hash)


def _build_pay_from_locked_batch(operation: Operation, function: Any) -> ContractFunction:
    payouts = [_payout_tuple(item) for item in operation.payload["payouts"]]
    return function(operation.request_id, payouts)


def _build_repay_from_locked(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(operation.request_id, _int(payload, "drawdown_id"), _amount(payload))


def _build_set_payout_delegate(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    allowed = payload["allowed"]
    if not isinstance(allowed, bool):
        raise ValueError(f"Payload field allowed is {allowed!r}, not a boolean")
    return function(
        operation.request_id, _line_id(operation), parse_address(payload["delegate"]), allowed
    )


def _build_register_payee(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(
        parse_address(payload["payee"]),
        _int(payload, "category"),
        _hash(payload, "documents_hash"),
    )


def _build_change_payee_category(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(parse_address(payload["payee"]), _int(payload, "category"))


# ---------------------------------------------------------------------------------------------
# Pools and liquidity
# ---------------------------------------------------------------------------------------------


def _build_create_pool(operation: Operation, function: Any) -> ContractFunction:
    return function(operation.request_id, _amount(operation.payload, "limit"))


def _build_change_pool_limit(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(operation.request_id, _int(payload, "pool_id"), _amount(payload, "limit"))


def _build_add_pool_member(operation: Operation, function: Any) -> ContractFunction:
    return function(operation.request_id, _int(operation.payload, "pool_id"), _line_id(operation))


def _build_fund_liquidity(operation: Operation, function: Any) -> ContractFunction:
    return function(operation.request_id, _amount(operation.payload))


def _build_withdraw_liquidity(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(operation.request_id, parse_address(payload["to"]), _amount(payload))


# ---------------------------------------------------------------------------------------------
# Regulator
# ---------------------------------------------------------------------------------------------


def _build_block_category(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(_int(payload, "category"), _hash(payload, "reason_hash"))


def _build_unblock_category(operation: Operation, function: Any) -> ContractFunction:
    return function(_int(operation.payload, "category"))


def _build_freeze_payee(operation: Operation, function: Any) -> ContractFunction:
    payload = operation.payload
    return function(parse_address(payload["payee"]), _hash(payload, "reason_hash"))


def _build_unfreeze_payee(operation: Operation, function: Any) -> ContractFunction:
    return function(parse_address(operation.payload["payee"]))


_OPERATOR = SignerRole.OPERATOR
_OFFICER = SignerRole.OFFICER
_REGULATOR = SignerRole.REGULATOR
_RULES = CallTarget.RULES

OPERATION_CALLS: Mapping[str, OperationCall] = {
    APPLY_FOR_LINE: OperationCall("applyForLine", _build_apply_for_line, _OPERATOR),
    APPROVE_LINE: OperationCall("approveLine", _build_line_action, _OFFICER),
    REJECT_LINE: OperationCall("rejectLine", _build_line_action, _OFFICER),
    OPEN_LINE: OperationCall("openLine", _build_line_action, _OFFICER),
    DRAWDOWN: OperationCall("drawdown", _build_drawdown, _OPERATOR),
    REPAY: OperationCall("repay", _build_line_amount, _OPERATOR),
    REPAY_INTEREST: OperationCall("repayInterest", _build_line_action, _OPERATOR),
    PAYOFF: OperationCall("payoff", _build_line_action, _OPERATOR),
    CHANGE_LIMIT: OperationCall("changeLimit", _build_line_limit, _OFFICER),
    PROPOSE_LIMIT_CHANGE: OperationCall("proposeLimitChange", _build_line_limit, _OFFICER),
    # The contract rejects an approval by the officer who proposed the change.
    APPROVE_LIMIT_CHANGE: OperationCall(
        "approveLimitChange", _build_line_action, SignerRole.SECOND_OFFICER
    ),
    RENEW_LINE: OperationCall("renewLine", _build_renew_line, _OFFICER),
    FREEZE_LINE: OperationCall("freezeLine", _build_line_action, _OFFICER),
    UNFREEZE_LINE: OperationCall("unfreezeLine", _build_line_action, _OFFICER),
    CLEAR_REVIEW_FLAG: OperationCall("clearReviewFlag", _build_line_action, _OFFICER),
    DECLARE_DEFAULT: OperationCall("declareDefault", _build_line_action, _OFFICER),
    WRITE_OFF: OperationCall("writeOff", _build_line_action, _OFFICER),
    RECOVER: OperationCall("recover", _build_line_amount, _OPERATOR),
    CLOSE_LINE: OperationCall("closeLine", _build_line_action, _OFFICER),
    PAY_FROM_LOCKED: OperationCall("payFromLocked", _build_pay_from_locked, _OPERATOR),
    PAY_FROM_LOCKED_BATCH: OperationCall(
        "payFromLockedBatch", _build_pay_from_locked_batch, _OPERATOR
    ),
    REPAY_FROM_LOCKED: OperationCall("repayFromLocked", _build_repay_from_locked, _OPERATOR),
    SET_PAYOUT_DELEGATE: OperationCall("setPayoutDelegate", _build_set_payout_delegate, _OPERATOR),
    REGISTER_PAYEE: OperationCall("registerPayee", _build_register_payee, _OPERATOR, _RULES),
    CHANGE_PAYEE_CATEGORY: OperationCall(
        "changePayeeCategory", _build_change_payee_category, _OPERATOR, _RULES
    ),
    CREATE_POOL: OperationCall("createPool", _build_create_pool, _OFFICER),
    CHANGE_POOL_LIMIT: OperationCall("changePoolLimit", _build_change_pool_limit, _OFFICER),
    ADD_POOL_MEMBER: OperationCall("addPoolMember", _build_add_pool_member, _OFFICER),
    REMOVE_POOL_MEMBER: OperationCall("removePoolMember", _build_line_action, _OFFICER),
    FUND_LIQUIDITY: OperationCall("fundLiquidity", _build_fund_liquidity, SignerRole.TREASURY),
    WITHDRAW_LIQUIDITY: OperationCall(
        "withdrawLiquidity", _build_withdraw_liquidity, SignerRole.TREASURY
    ),
    BLOCK_CATEGORY: OperationCall("blockCategory", _build_block_category, _REGULATOR, _RULES),
    UNBLOCK_CATEGORY: OperationCall("unblockCategory", _build_unblock_category, _REGULATOR, _RULES),
    FREEZE_PAYEE: OperationCall("freezePayee", _build_freeze_payee, _REGULATOR, _RULES),
    UNFREEZE_PAYEE: OperationCall("unfreezePayee", _build_unfreeze_payee, _REGULATOR, _RULES),
    REGULATOR_FREEZE_LINE: OperationCall("regulatorFreezeLine", _build_line_action, _REGULATOR),
    REGULATOR_UNFREEZE_LINE: OperationCall("regulatorUnfreezeLine", _build_line_action, _REGULATOR),
}

CONTRACT_FUNCTIONS: Mapping[str, str] = {
    kind: call.function for kind, call in OPERATION_CALLS.items()
}
CALL_BUILDERS: Mapping[str, CallBuilder] = {
    kind: call.builder for kind, call in OPERATION_CALLS.items()
}
SIGNER_ROLES: Mapping[str, SignerRole] = {
    kind: call.signer for kind, call in OPERATION_CALLS.items()
}
CALL_TARGETS: Mapping[str, CallTarget] = {
    kind: call.target for kind, call in OPERATION_CALLS.items()
}


def kinds_signed_by(role: SignerRole) -> list[str]:
    """Return the operation kinds whose transactions `role` signs."""
    return sorted(kind for kind, signer in SIGNER_ROLES.items() if signer is role)


def build_call(operation: Operation, contract: Contract) -> ContractFunction:
    """Return the call of `contract` that carries out `operation`.

    `contract` is the facility or the fund-flow rules, as CALL_TARGETS names
    for the kind. Raises KeyError for a kind without a builder, and
    InvalidValueError or ValueError when a stored payload no longer parses
    (payloads are validated before they are stored).
    """
    call = OPERATION_CALLS[operation.kind]
    return call.builder(operation, getattr(contract.functions, call.function))
