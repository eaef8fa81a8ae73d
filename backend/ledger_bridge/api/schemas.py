"""Request and response bodies shared by the bridge's routes."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ledger_bridge.chain.values import AMOUNT_ARGUMENT_NAMES
from ledger_bridge.core.security import IssuedCredential, Role
from ledger_bridge.money import Address, format_amount
from ledger_bridge.storage.models import Credential, Operation, OperationState, Organisation

EVENT_ARGS_DESCRIPTION = (
    "The event's arguments by name. Amounts are decimal strings in currency units, "
    'such as "2500000.00"; other integers are decimal strings; bytes are 0x hex.'
)


def present_event_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """Render stored event arguments for a response: amounts in fen become decimal strings."""
    return {name: _present_argument(name, value) for name, value in args.items()}


def _present_argument(name: str, value: Any) -> Any:
    if name in AMOUNT_ARGUMENT_NAMES and isinstance(value, str) and value.isdigit():
        return format_amount(int(value))
    return value


class RequestBody(BaseModel):
    """Base of request bodies: unknown fields are errors, so a misspelt field is not ignored."""

    model_config = ConfigDict(extra="forbid")


class RevertOut(BaseModel):
    """A decoded custom error from a reverted transaction."""

    error: str = Field(description="Name of the contract's custom error.")
    args: dict[str, Any] | list[Any] = Field(description="The error's arguments, by name if known.")
    message: str = Field(description="The error in words, with what to do next.")


class ResultEventOut(BaseModel):
    """An event that a confirmed operation's transaction emitted."""

    event: str = Field(examples=["LineApplied"])
    args: dict[str, Any] = Field(description=EVENT_ARGS_DESCRIPTION)


class OperationResultOut(BaseModel):
    """The on-chain effects of a confirmed operation, read from its receipt."""

    ids: dict[str, str] = Field(
        description=(
            "Ids that the operation created, as decimal strings: line_id for an application, "
            "drawdown_id for a drawdown (use it to pay out a locked balance), pool_id for a "
            "new pool. Empty for other operations."
        ),
        examples=[{"line_id": "7"}],
    )
    events: list[ResultEventOut] = Field(
        description="The events of the bridge's contracts in the transaction, in log order."
    )

    @classmethod
    def from_stored(cls, result: Mapping[str, Any]) -> OperationResultOut:
        """Build the response part from Operation.result."""
        return cls(
            ids=dict(result.get("ids", {})),
            events=[
                ResultEventOut(event=item["event"], args=present_event_args(item["args"]))
                for item in result.get("events", [])
            ],
        )


OPERATION_EXAMPLE: dict[str, Any] = {
    "id": "5f0c2a8e-3d4b-4c1e-9a57-2b6f1d8e9c10",
    "kind": "drawdown",
    "state": "accepted",
    "idempotency_key": "core-banking-20270115-000123",
    "line_id": "7",
    "facility_address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
    "request_id": 42,
    "payload": {"amount": "2500.00", "payee": None, "invoice_hash": None},
    "tx_hash": None,
    "nonce": None,
    "block_number": None,
    "block_hash": None,
    "revert": None,
    "result": None,
    "created_at": "2027-01-15T02:30:00Z",
    "updated_at": "2027-01-15T02:30:00Z",
    "sent_at": None,
    "confirmed_at": None,
}


class OperationOut(BaseModel):
    """A write request and its progress towards the chain."""

    model_config = ConfigDict(json_schema_extra={"examples": [OPERATION_EXAMPLE]})

    id: uuid.UUID
    kind: str
    state: OperationState
    idempotency_key: str
    line_id: str | None = Field(description="Target line id as a decimal string (uint256).")
    facility_address: str | None
    request_id: int | None = Field(
        description=(
            "Request id that the facility contract sees for this write, or null for writes to the "
            "fund-flow rules contract, whose functions take none."
        )
    )
    payload: dict[str, Any]
    tx_hash: str | None
    nonce: int | None
    block_number: int | None
    block_hash: str | None
    revert: RevertOut | None
    result: OperationResultOut | None = Field(
        description="Of a confirmed operation: the ids it created and the events it emitted."
    )
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    confirmed_at: datetime | None

    @classmethod
    def from_operation(cls, operation: Operation) -> OperationOut:
        """Build the response body from a stored operation."""
        return cls(
            id=operation.id,
            kind=operation.kind,
            state=operation.state,
            idempotency_key=operation.idempotency_key,
            line_id=None if operation.line_id is None else str(operation.line_id),
            facility_address=operation.facility_address,
            request_id=operation.request_id,
            payload=operation.payload,
            tx_hash=operation.tx_hash,
            nonce=operation.nonce,
            block_number=operation.block_number,
            block_hash=operation.block_hash,
            revert=None if operation.revert is None else RevertOut.model_validate(operation.revert),
            result=None
            if operation.result is None
            else OperationResultOut.from_stored(operation.result),
            created_at=operation.created_at,
            updated_at=operation.updated_at,
            sent_at=operation.sent_at,
            confirmed_at=operation.confirmed_at,
        )


class OrganisationCreate(RequestBody):
    """An organisation to create, with its first credential."""

    name: str = Field(min_length=1, max_length=200, examples=["Example Rural Commercial Bank"])
    kind: Role
    facility_address: Address | None = Field(
        None, description="Required for a bank: its facility contract. Absent for other kinds."
    )


class OrganisationOut(BaseModel):
    """An organisation that may hold credentials."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: Role
    facility_address: str | None
    created_at: datetime


class CredentialOut(BaseModel):
    """A credential's public record; the secret is never returned after it is issued."""

    model_config = ConfigDict(from_attributes=True)

    key_id: str
    organisation_id: uuid.UUID
    role: Role
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_credential(cls, credential: Credential) -> CredentialOut:
        """Build the response body from a stored credential."""
        return cls.model_validate(credential)


class IssuedCredentialOut(BaseModel):
    """A credential's secret, returned once. Store it now, because it cannot be shown again."""

    key_id: str
    secret: str
    token: str = Field(description="The value to send as 'Authorization: Bearer <token>'.")

    @classmethod
    def from_issued(cls, issued: IssuedCredential) -> IssuedCredentialOut:
        """Build the response body from a newly issued credential."""
        return cls(key_id=issued.key_id, secret=issued.secret, token=issued.token)


class OrganisationCreated(BaseModel):
    """A new organisation and its first credential."""

    organisation: OrganisationOut
    credential: IssuedCredentialOut

    @classmethod
    def build(cls, organisation: Organisation, issued: IssuedCredential) -> OrganisationCreated:
        """Build the response body from the stored organisation and its credential."""
        return cls(
            organisation=OrganisationOut.model_validate(organisation),
            credential=IssuedCredentialOut.from_issued(issued),
        )
