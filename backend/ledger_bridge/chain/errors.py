"""Errors of the chain layer, and decoding of revert data into words.

`decode_revert` turns the bytes a reverted call returns into the error's
name, its arguments as exact JSON values and a sentence such as
"CreditLimitExceeded: line 3 has 1,500,000.00 available, 2,000,000.00 requested".
The custom errors come from the ABIs shipped in chain/abi, plus Solidity's
built-in Error(string) and Panic(uint256).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector

from ledger_bridge.chain.contracts import CONTRACT_NAMES, load_abi
from ledger_bridge.chain.values import describe_argument, to_json_arguments
from ledger_bridge.core.errors import LedgerBridgeError

# Errors with which the fund-flow rules or a line freeze reject a payout: every error named
# FundFlow..., and CreditLineFrozen.
LOCK_REFUSAL_ERROR_PREFIX = "FundFlow"
LOCK_REFUSAL_ERRORS = ("CreditLineFrozen",)


def is_lock_refusal(error_name: str) -> bool:
    """Return whether a decoded error is a fund-flow lock's rejection of a payout."""
    return error_name.startswith(LOCK_REFUSAL_ERROR_PREFIX) or error_name in LOCK_REFUSAL_ERRORS


# Templates of the messages, by error name. Placeholders are argument names,
# filled with values from `describe_argument` (amounts in yuan, days as dates).
MESSAGE_TEMPLATES: Mapping[str, str] = {
    "CreditRequestAlreadyUsed": "request id {requestId} was used before by this facility",
    "CreditLineNotFound": "line {lineId} does not exist",
    "CreditLineStatusInvalid": "line {lineId} is {status}, which does not allow this action",
    "CreditApproverIsSubmitter": (
        "account {account} submitted line {lineId} and cannot approve it too; "
        "another officer must approve it"
    ),
    "CreditLineFrozen": (
        "line {lineId} is frozen (by the bank: {frozenByBank}, by the regulator: "
        "{frozenByRegulator})"
    ),
    "CreditFreezeUnchanged": "the freeze of line {lineId} by this party is already {frozen}",
    "CreditLinePastMaturity": "line {lineId} matured on {maturityDay} and today is {today}",
    "CreditLimitExceeded": "line {lineId} has {available} available, {requested} requested",
    "CreditPoolLimitExceeded": (
        "pool {poolId} of line {lineId} has {poolRoom} available, {requested} requested"
    ),
    "CreditInterestOverdue": (
        "line {lineId} has {overdueInterest} of overdue interest, which must be repaid "
        "before the next drawdown"
    ),
    "CreditReviewRequired": (
        "line {lineId} completed {revolvingCycles} revolving cycles and waits for an "
        "officer to clear its review flag"
    ),
    "CreditAmountZero": "the amount is zero, and it must be at least 0.01",
    "CreditRepaymentExceedsOwed": "line {lineId} owes {owed}, less than the {amount} repaid",
    "CreditNothingOwed": "line {lineId} owes nothing",
    "CreditBalanceOutstanding": "line {lineId} still owes {owed} and cannot be closed",
    "CreditLimitChangeTooLarge": (
        "changing the limit of line {lineId} from {currentLimit} to {requestedLimit} "
        "exceeds the {maxChangeBps} basis points one officer may change alone; "
        "propose it for a second officer"
    ),
    "CreditLimitChangeTooSoon": (
        "the limit of line {lineId} last changed on {lastChangeDay}, and one officer alone "
        "may change it again from {nextAllowedDay}"
    ),
    "CreditLimitUnchanged": "line {lineId} already has the limit {limit}",
    "CreditNoPendingLimitChange": "line {lineId} has no proposed limit change",
    "CreditSecondOfficerRequired": (
        "account {proposer} proposed the limit change of line {lineId} and cannot approve it too"
    ),
    "CreditMaturityInvalid": "the maturity {maturityDay} must be after {earliestDay}",
    "CreditRateInvalid": "the rate of {rateBps} basis points is outside the allowed range",
    "CreditRateEffectiveDayInvalid": (
        "the new rate of line {lineId} takes effect on {effectiveDay}, before today {today}"
    ),
    "CreditRateChangePending": (
        "line {lineId} has a rate change pending from {pendingDay}, so a change from "
        "{effectiveDay} must wait until that one has applied"
    ),
    "CreditBorrowerInvalid": "the borrower address {borrower} is invalid",
    "CreditInsufficientLiquidity": (
        "the facility has {liquidity} of free liquidity, {requested} requested"
    ),
    "CreditEntrustedPaymentRequired": (
        "a drawdown of {amount} on line {lineId} reaches the entrusted-payment threshold "
        "of {threshold}, so it must pay a registered payee directly"
    ),
    "CreditInvoiceHashMissing": ("the entrusted payment from line {lineId} has no invoice hash"),
    "CreditDayInPast": "{day} is before {lastDay}, the last day the line was brought up to date",
    "CreditPoolNotFound": "pool {poolId} does not exist",
    "CreditLineAlreadyInPool": "line {lineId} is already in pool {poolId}",
    "CreditLineNotInPool": "line {lineId} is in no pool",
    "CreditPolicyInvalid": "the policy is invalid: {reason}",
    "FundFlowDrawdownNotLocked": "drawdown {drawdownId} has no locked balance",
    "FundFlowLockedBalanceInsufficient": (
        "drawdown {drawdownId} has {locked} locked, {requested} requested"
    ),
    "FundFlowLockedBalanceRemaining": (
        "line {lineId} still holds {locked} of locked money; pay it out or return it "
        "as a repayment first"
    ),
    "FundFlowNotPayoutDelegate": (
        "account {account} is neither a bank operator nor a payout delegate of line {lineId}"
    ),
    "FundFlowPayeeNotRegistered": "payee {payee} is not registered",
    "FundFlowPayeeFrozen": "payee {payee} in category {category} is frozen by the regulator",
    "FundFlowCategoryBlocked": (
        "payee {payee} is in category {category}, which the regulator blocked"
    ),
    "FundFlowPayeeAlreadyRegistered": "payee {payee} is already registered",
    "FundFlowPayeeInvalid": "{payee} cannot be a payee",
    "FundFlowCategoryInvalid": "category {category} is not a valid category code",
    "FundFlowCategoryStateUnchanged": "category {category} already has blocked = {blocked}",
    "FundFlowPayeeStateUnchanged": "payee {payee} is already {status}",
    "AccessControlUnauthorizedAccount": "account {account} does not have the role {neededRole}",
    "ERC20InsufficientBalance": "account {sender} holds {balance}, {needed} needed",
    "ERC20InsufficientAllowance": "spender {spender} may spend {allowance}, {needed} needed",
    "ERC20InvalidReceiver": "{receiver} cannot receive tokens",
    "ReentrancyGuardReentrantCall": "the contract was called again before its call finished",
    "SafeERC20FailedOperation": "a transfer of token {token} failed",
    "Error": "{message}",
    "Panic": "the contract panicked with code {code}",
}

# Solidity's built-in errors, which no ABI lists.
_BUILTIN_ERRORS: tuple[dict[str, Any], ...] = (
    {"type": "error", "name": "Error", "inputs": [{"name": "message", "type": "string"}]},
    {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
)


class ChainError(LedgerBridgeError):
    """A failure talking to the chain or a mismatch between the chain and the configuration."""

    status = 503
    title = "Chain unavailable"
    slug = "chain-unavailable"


class ChainMismatchError(ChainError, ValueError):
    """The node serves another chain than the deployment file describes."""

    def __init__(self, field_name: str, expected: object, actual: object) -> None:
        super().__init__(
            f"The node's {field_name} is {actual}, but the deployment file expects {expected}. "
            "Point LEDGER_RPC_URL at the chain the contracts were deployed on, or deploy again."
        )


class ChainUnavailableError(ChainError, ConnectionError):
    """The node did not respond to a read, or returned an error for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"The chain node could not be read ({reason}). Retry in a few seconds; if it "
            "persists, ask the bridge's operators to check the node behind LEDGER_RPC_URL."
        )


class ChainReadRevertedError(ChainError, RuntimeError):
    """A read-only contract call reverted where the bridge expected a result."""

    status = 502
    title = "Contract read reverted"
    slug = "contract-read-reverted"

    def __init__(self, message: str) -> None:
        super().__init__(
            f"A read from the contract reverted: {message}. Report this to the bridge's "
            "operators with the request's URL, because the bridge checks for this case first."
        )


@dataclass(frozen=True, slots=True)
class DecodedRevert:
    """A revert decoded with the contracts' ABIs: error name, exact arguments and a sentence."""

    error: str
    args: dict[str, Any] = field(default_factory=dict)
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the form stored in Operation.revert and shown by the API."""
        return {"error": self.error, "args": self.args, "message": self.message}


def decode_revert(data: bytes | str | None) -> DecodedRevert:
    """Decode revert data returned by a call or a gas estimation."""
    raw = _to_bytes(data)
    if len(raw) < 4:
        return DecodedRevert(
            error="Reverted",
            message="Reverted: the contract reverted without an error, so the cause is unknown",
        )
    definition = _errors_by_selector().get(raw[:4])
    if definition is None:
        return _unknown_error(raw)
    inputs = definition["inputs"]
    try:
        values = abi_decode([item["type"] for item in inputs], raw[4:])
    except (DecodingError, OverflowError, ValueError):
        return _unknown_error(raw)
    return DecodedRevert(
        error=definition["name"],
        args=to_json_arguments(inputs, values),
        message=_message(definition["name"], inputs, values),
    )


def revert_data_of(error: Exception) -> bytes | str | None:
    """Return the revert data that web3.py attached to a contract error, if any."""
    data = getattr(error, "data", None)
    if isinstance(data, Mapping):
        data = data.get("data")
    return data if isinstance(data, bytes | str) else None


def error_signature(definition: Mapping[str, Any]) -> str:
    """Return an error's canonical signature, such as "CreditLineNotFound(uint64)"."""
    return (
        f"{definition['name']}({','.join(_canonical_type(item) for item in definition['inputs'])})"
    )


def _canonical_type(item: Mapping[str, Any]) -> str:
    abi_type: str = item["type"]
    if not abi_type.startswith("tuple"):
        return abi_type
    components = ",".join(_canonical_type(component) for component in item["components"])
    return f"({components}){abi_type[len('tuple') :]}"


@lru_cache(maxsize=1)
def _errors_by_selector() -> dict[bytes, Mapping[str, Any]]:
    definitions: list[Mapping[str, Any]] = list(_BUILTIN_ERRORS)
    for name in CONTRACT_NAMES:
        definitions.extend(item for item in load_abi(name) if item["type"] == "error")
    return {_selector(definition): definition for definition in definitions}


def _selector(definition: Mapping[str, Any]) -> bytes:
    return function_signature_to_4byte_selector(error_signature(definition))


def _message(name: str, inputs: Iterable[Mapping[str, Any]], values: Iterable[Any]) -> str:
    described = {
        item["name"]: describe_argument(
            item["name"], item.get("internalType", ""), item["type"], value
        )
        for item, value in zip(inputs, values, strict=True)
    }
    template = MESSAGE_TEMPLATES.get(name)
    if template is None:
        listed = ", ".join(f"{key}={value}" for key, value in described.items())
        return f"{name}: {listed}" if listed else name
    return f"{name}: {template.format(**described)}"


def _unknown_error(raw: bytes) -> DecodedRevert:
    return DecodedRevert(
        error="UnknownError",
        args={"data": "0x" + raw.hex()},
        message=(
            f"UnknownError: the contract reverted with selector 0x{raw[:4].hex()}, which matches "
            "no error in the bridge's ABIs; export the ABIs again if the contracts changed"
        ),
    )


def _to_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    text = data[2:] if data.startswith(("0x", "0X")) else data
    try:
        return bytes.fromhex(text)
    except ValueError:
        return b""
