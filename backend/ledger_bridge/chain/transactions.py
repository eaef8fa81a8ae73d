"""Fees, nonces and local signing of the worker's transactions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode
from eth_account.signers.local import LocalAccount
from eth_utils import collapse_if_tuple, function_abi_to_4byte_selector
from hexbytes import HexBytes
from requests.exceptions import RequestException
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ProviderConnectionError, TimeExhausted, TransactionNotFound

from ledger_bridge.storage.models import Operation, OperationState, SignedTransaction

# Errors that mean "not yet" or "try again": the node is unreachable or slow, or
# it has not seen a transaction or receipt yet. They are retried, never failures.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    RequestException,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
)

# Gas limit = estimate * 12 / 10, because interest accrual may take a few more steps
# in the block that includes the transaction than in the block the estimate used.
GAS_MARGIN_NUMERATOR = 12
GAS_MARGIN_DENOMINATOR = 10


@dataclass(frozen=True, slots=True)
class SignedCall:
    """A contract call signed for one nonce, ready to be stored and sent."""

    tx_hash: str
    nonce: int
    raw_transaction: str


def fee_fields(w3: Web3) -> dict[str, int]:
    """Return EIP-1559 fee fields, or a legacy gas price on chains without a base fee.

    The maximum fee is twice the latest base fee plus the tip, so the
    transaction stays valid through several blocks of rising base fees.
    """
    base_fee = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee is None:
        return {"gasPrice": w3.eth.gas_price}
    tip = w3.eth.max_priority_fee
    return {"maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip}


def build_unsigned(
    function: ContractFunction,
    sender: str,
    nonce: int,
    *,
    chain_id: int,
    fees: dict[str, int],
) -> dict[str, Any]:
    """Encode the transaction of `function` once, with its gas limit still to be set.

    `fees` comes from `fee_fields`, read once for a batch of transactions.
    """
    return {
        "from": sender,
        "to": function.address,
        "data": encode_call(function),
        "value": 0,
        "nonce": nonce,
        "chainId": chain_id,
        **fees,
    }


def encode_call(function: ContractFunction) -> str:
    """Return the calldata of a contract call made with positional arguments, as 0x hex.

    eth_abi encodes the arguments directly against the function's ABI entry,
    which costs a fraction of web3's `build_transaction` with its validation.
    """
    if function.kwargs:
        raise ValueError(
            f"{function.fn_name} was called with keyword arguments; pass them in order"
        )
    types = [collapse_if_tuple(dict(item)) for item in function.abi["inputs"]]
    selector = function_abi_to_4byte_selector(function.abi)
    return "0x" + (selector + encode(types, list(function.args))).hex()


def estimate_gas(w3: Web3, transaction: dict[str, Any]) -> int:
    """Estimate an unsigned transaction's gas; a revert raises ContractLogicError."""
    call = {key: transaction[key] for key in ("from", "to", "data", "value") if key in transaction}
    return int(w3.eth.estimate_gas(call))  # type: ignore[arg-type]


def sign_transaction(
    account: LocalAccount, transaction: dict[str, Any], gas_estimate: int
) -> SignedCall:
    """Set the gas limit from the estimate, with its margin, and sign with `account`'s key."""
    transaction = {
        **transaction,
        "gas": gas_estimate * GAS_MARGIN_NUMERATOR // GAS_MARGIN_DENOMINATOR,
    }
    signed = account.sign_transaction(transaction)
    return SignedCall(
        tx_hash=HexBytes(signed.hash).to_0x_hex(),
        nonce=transaction["nonce"],
        raw_transaction=HexBytes(signed.raw_transaction).to_0x_hex(),
    )


class NonceTracker:
    """The next nonce of one signer, owned by the worker that signs for it.

    It starts at the larger of the node's pending transaction count and one
    past the highest nonce stored for a sent operation. A stored transaction
    may not have reached the node before a crash, and it is then resent with
    its own nonce. A nonce is taken only once its transaction
    is stored, so a failed estimation leaves no gap.
    """

    def __init__(self, w3: Web3, address: str) -> None:
        self._w3 = w3
        self._address = address
        self._next: int | None = None

    @property
    def address(self) -> str:
        """The signer's address."""
        return self._address

    def peek(self, session: Session) -> int:
        """Return the nonce the next transaction gets, syncing with the node on first use."""
        if self._next is None:
            self._next = self._sync(session)
        return self._next

    def take(self, nonce: int) -> None:
        """Mark `nonce` as used by a stored transaction."""
        self._next = nonce + 1

    def reset(self) -> None:
        """Forget the nonce, so the next `peek` asks the node and the database again."""
        self._next = None

    def _sync(self, session: Session) -> int:
        pending = self._w3.eth.get_transaction_count(self._address, "pending")
        query = (
            select(func.max(SignedTransaction.nonce))
            .join(Operation, Operation.tx_hash == SignedTransaction.tx_hash)
            .where(
                SignedTransaction.sender == self._address,
                Operation.state == OperationState.SENT,
            )
        )
        highest_stored = session.scalar(query)
        return pending if highest_stored is None else max(pending, highest_stored + 1)
