"""Contract calls for each kind of operation, and which role signs them.

An operation's payload is the validated request body in its JSON form. The
builders here turn it into the contract function call, with the operation's
request id as its first argument. A new kind of write adds a builder and its
signer role.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from web3.contract import Contract
from web3.contract.contract import ContractFunction

from ledger_bridge.chain.signers import SignerRole
from ledger_bridge.money import parse_address, parse_amount, parse_bytes32_hex
from ledger_bridge.storage.models import Operation

DRAWDOWN = "drawdown"

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_BYTES32 = bytes(32)

CallBuilder = Callable[[Operation, Contract], ContractFunction]


def _build_drawdown(operation: Operation, facility: Contract) -> ContractFunction:
    payload = operation.payload
    payee = payload.get("payee")
    invoice_hash = payload.get("invoice_hash")
    return facility.functions.drawdown(
        operation.request_id,
        _line_id(operation),
        parse_amount(payload["amount"]),
        ZERO_ADDRESS if payee is None else parse_address(payee),
        ZERO_BYTES32
        if invoice_hash is None
        else bytes.fromhex(parse_bytes32_hex(invoice_hash)[2:]),
    )


def _line_id(operation: Operation) -> int:
    if operation.line_id is None:
        raise ValueError(f"Operation {operation.id} of kind {operation.kind} has no line id")
    return operation.line_id


SIGNER_ROLES: Mapping[str, SignerRole] = {DRAWDOWN: SignerRole.OPERATOR}
CALL_BUILDERS: Mapping[str, CallBuilder] = {DRAWDOWN: _build_drawdown}


def kinds_signed_by(role: SignerRole) -> list[str]:
    """Return the operation kinds whose transactions `role` signs."""
    return sorted(kind for kind, signer in SIGNER_ROLES.items() if signer is role)


def build_call(operation: Operation, facility: Contract) -> ContractFunction:
    """Return the facility function call that carries out `operation`.

    Raises KeyError for a kind without a builder, and InvalidValueError when a
    stored payload no longer parses (payloads are validated before they are stored).
    """
    return CALL_BUILDERS[operation.kind](operation, facility)
