"""Decoded outcomes of operations that failed for a reason other than a revert at estimation.

Each has the form of a decoded revert, {error, args, message}, so the API
shows every failure the same way.
"""

from __future__ import annotations

from web3 import Web3
from web3.exceptions import ContractLogicError
from web3.types import TxReceipt

from ledger_bridge.chain.errors import DecodedRevert, decode_revert, revert_data_of
from ledger_bridge.storage.models import Operation, SignedTransaction


def explain_failed_receipt(w3: Web3, receipt: TxReceipt) -> DecodedRevert:
    """Decode why a mined transaction reverted, by replaying it on its parent block."""
    transaction = w3.eth.get_transaction(receipt["transactionHash"])
    block_number = receipt["blockNumber"]
    if receipt["gasUsed"] >= transaction["gas"]:
        return DecodedRevert(
            error="OutOfGas",
            args={"gasLimit": str(transaction["gas"])},
            message=(
                f"OutOfGas: the transaction used all of its {transaction['gas']} gas in "
                f"block {block_number}; send the request again with a new Idempotency-Key"
            ),
        )
    call = {
        "from": transaction["from"],
        "to": transaction["to"],
        "data": transaction["input"],
        "gas": transaction["gas"],
    }
    try:
        w3.eth.call(call, block_number - 1)  # type: ignore[arg-type]
    except ContractLogicError as error:
        return decode_revert(revert_data_of(error))
    return DecodedRevert(
        error="Reverted",
        message=(
            f"Reverted: the transaction reverted in block {block_number}, but it succeeds "
            "on the state before that block, so an earlier transaction in the same block "
            "changed the state; send the request again if it still applies"
        ),
    )


def invalid_payload(operation: Operation, error: Exception) -> DecodedRevert:
    """Describe a stored payload that no longer builds a contract call."""
    return DecodedRevert(
        error="InvalidPayload",
        args={"kind": operation.kind},
        message=(
            f"InvalidPayload: the stored {operation.kind} request cannot be turned into a "
            f"contract call ({type(error).__name__}: {error}); send it again with a new "
            "Idempotency-Key"
        ),
    )


def facility_not_deployed(operation: Operation) -> DecodedRevert:
    """Describe an operation for a contract that the deployment file does not list."""
    return DecodedRevert(
        error="FacilityNotDeployed",
        args={"facility": operation.facility_address},
        message=(
            f"FacilityNotDeployed: {operation.facility_address} is not a facility of the "
            "bridge's deployment file, so nothing was sent; ask the bridge's operators to "
            "check the organisation's facility address"
        ),
    )


def rules_not_deployed(operation: Operation) -> DecodedRevert:
    """Describe an operation for the fund-flow rules when the worker has no rules address."""
    return DecodedRevert(
        error="RulesNotDeployed",
        args={},
        message=(
            f"RulesNotDeployed: operation {operation.id} calls the fund-flow rules contract, "
            "but the bridge's worker was started without its address, so nothing was sent; "
            "ask the bridge's operators to check the deployment file"
        ),
    )


def request_used_elsewhere(operation: Operation, current: SignedTransaction) -> DecodedRevert:
    """Describe a request id that another sender's transaction used on chain."""
    return DecodedRevert(
        error="RequestIdUsedElsewhere",
        args={
            "requestId": str(operation.request_id),
            "nonce": str(current.nonce),
            "transactionHash": current.tx_hash,
        },
        message=(
            f"RequestIdUsedElsewhere: request id {operation.request_id} is used on chain, but "
            f"not by transaction {current.tx_hash}, whose nonce {current.nonce} another "
            "transaction took. Look up the request id in the line's history before sending "
            "the request again with a new Idempotency-Key"
        ),
    )
