"""Tables of the bridge's own database.

Amounts in payloads are stored as decimal strings or ints of fen, never floats.
Column types are chosen to work unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ledger_bridge.core.security import Role
from ledger_bridge.storage.types import UInt256, UTCDateTime

ADDRESS_LENGTH = 42
TX_HASH_LENGTH = 66
IDEMPOTENCY_KEY_MAX_LENGTH = 128


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base with constraint names that Alembic can refer to on every backend."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class OperationState(StrEnum):
    """Progress of a write request from acceptance to a final on-chain outcome."""

    ACCEPTED = "accepted"
    SENDING = "sending"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        """Whether the operation can no longer change state."""
        return self in {OperationState.CONFIRMED, OperationState.FAILED}


# A worker may go back from sending to accepted when a send failed before the
# node accepted the transaction, and from sent to sending to replace it.
OPERATION_TRANSITIONS: dict[OperationState, frozenset[OperationState]] = {
    OperationState.ACCEPTED: frozenset({OperationState.SENDING, OperationState.FAILED}),
    OperationState.SENDING: frozenset(
        {OperationState.ACCEPTED, OperationState.SENT, OperationState.FAILED}
    ),
    OperationState.SENT: frozenset(
        {OperationState.SENDING, OperationState.CONFIRMED, OperationState.FAILED}
    ),
    OperationState.CONFIRMED: frozenset(),
    OperationState.FAILED: frozenset(),
}


def _string_enum(enum_class: type[StrEnum], name: str) -> Enum:
    """Store an enum's values as VARCHAR with a CHECK constraint, identical on every backend."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Organisation(Base):
    """A bank, auditor, regulator or administrator that owns API credentials."""

    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[Role] = mapped_column(_string_enum(Role, "role"))
    # The bank's facility contract in EIP-55 case, or NULL for other kinds.
    facility_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    credentials: Mapped[list[Credential]] = relationship(back_populates="organisation")


class Credential(Base):
    """An API credential: a public key id and the scrypt hash of its secret."""

    __tablename__ = "credentials"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    role: Mapped[Role] = mapped_column(_string_enum(Role, "role"))
    secret_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    organisation: Mapped[Organisation] = relationship(back_populates="credentials")


class RequestIdSequence(Base):
    """The next on-chain request id of one facility."""

    __tablename__ = "request_id_sequences"

    facility_address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), primary_key=True)
    next_request_id: Mapped[int] = mapped_column(BigInteger, default=1)


class Operation(Base):
    """A write request, stored before anything is sent and tracked until it is final."""

    __tablename__ = "operations"
    __table_args__ = (
        UniqueConstraint("organisation_id", "idempotency_key"),
        UniqueConstraint("facility_address", "request_id"),
        Index("ix_operations_state_created_at", "state", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    organisation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    credential_key_id: Mapped[str] = mapped_column(ForeignKey("credentials.key_id"))
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH))
    # SHA-256 hex of the canonical JSON of method, path and validated body.
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[int | None] = mapped_column(UInt256())
    # Facility whose request id sequence the operation used, or NULL when the operation
    # targets no facility. Rows with NULLs never collide in the unique constraint.
    facility_address: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    request_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]]
    state: Mapped[OperationState] = mapped_column(
        _string_enum(OperationState, "operation_state"), default=OperationState.ACCEPTED
    )
    tx_hash: Mapped[str | None] = mapped_column(String(TX_HASH_LENGTH))
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(TX_HASH_LENGTH))
    # Decoded custom error of a reverted transaction: {"error", "args", "message"}.
    revert: Mapped[dict[str, Any] | None]
    # Of a confirmed operation: the ids its transaction created and the events it emitted,
    # {"ids": {"line_id": "7"}, "events": [{"event", "args"}]}, integers as decimal strings.
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]


# ---------------------------------------------------------------------------------------------
# Chain worker and event indexer
# ---------------------------------------------------------------------------------------------

# SQLite autoincrements only an INTEGER PRIMARY KEY, which holds 64 bits there anyway.
_EVENT_ID_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class SignedTransaction(Base):
    """A transaction signed for an operation, stored before it is sent.

    A worker that restarts finds the exact bytes here and can resend them with
    the same nonce and hash, so a transaction is never signed twice by mistake.
    """

    __tablename__ = "signed_transactions"
    __table_args__ = (Index("ix_signed_transactions_sender_nonce", "sender", "nonce"),)

    tx_hash: Mapped[str] = mapped_column(String(TX_HASH_LENGTH), primary_key=True)
    operation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("operations.id"), index=True)
    sender: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    nonce: Mapped[int] = mapped_column(BigInteger)
    # The signed RLP bytes as 0x-prefixed hex, ready for eth_sendRawTransaction.
    raw_transaction: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SignerLease(Base):
    """The right of one bridge replica to assign nonces and send transactions for a signer.

    A holder renews `expires_at` well before it passes; another replica takes
    the lease only after it has passed. `epoch` grows with every change of
    holder, and each transaction is stored only while its worker's holder id
    and epoch are still the row's, checked in the same database transaction.
    """

    __tablename__ = "signer_leases"

    signer_address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), primary_key=True)
    holder_id: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]
    acquired_at: Mapped[datetime]
    renewed_at: Mapped[datetime]


class ChainEvent(Base):
    """One decoded contract event, stored once per transaction hash and log index.

    Block number and log index together are unique on a chain, so they order
    every query and serve as the pagination key.
    """

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("transaction_hash", "log_index"),
        # A line's history: one index range scan per page, in chain order.
        Index(
            "ix_chain_events_line",
            "contract_address",
            "line_id",
            "block_number",
            "log_index",
        ),
        Index("ix_chain_events_block_number", "block_number"),
        # A facility's history, and the regulator's replays of one kind of event.
        Index("ix_chain_events_contract_position", "contract_address", "block_number", "log_index"),
        Index("ix_chain_events_event_position", "event", "block_number", "log_index"),
    )

    id: Mapped[int] = mapped_column(_EVENT_ID_TYPE, primary_key=True, autoincrement=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str] = mapped_column(String(TX_HASH_LENGTH))
    block_timestamp: Mapped[datetime]
    transaction_hash: Mapped[str] = mapped_column(String(TX_HASH_LENGTH))
    transaction_index: Mapped[int] = mapped_column(Integer)
    log_index: Mapped[int] = mapped_column(Integer)
    contract_address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH))
    contract_name: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    # The event's lineId argument, for events that have one.
    line_id: Mapped[int | None] = mapped_column(UInt256())
    # Decoded arguments by name; integers as decimal strings, bytes as 0x hex.
    args: Mapped[dict[str, Any]]
    # Whether the block had the configured number of confirmations when last checked.
    confirmed: Mapped[bool] = mapped_column(Boolean)


class IndexerCheckpoint(Base):
    """The last block whose events are all stored, committed together with those events."""

    __tablename__ = "indexer_checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    # Hash of that block, compared with the chain to detect a reorganisation.
    block_hash: Mapped[str | None] = mapped_column(String(TX_HASH_LENGTH))
    # The last block whose events are marked confirmed; NULL in rows older than the column.
    confirmed_block_number: Mapped[int | None] = mapped_column(BigInteger)
    # The chain the index was built from, checked against the node on every start.
    chain_id: Mapped[int | None] = mapped_column(BigInteger)
    genesis_hash: Mapped[str | None] = mapped_column(String(TX_HASH_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class IndexedBlock(Base):
    """The hash of a recently indexed block, kept to find the fork point of a reorganisation."""

    __tablename__ = "indexer_block_hashes"

    block_number: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    block_hash: Mapped[str] = mapped_column(String(TX_HASH_LENGTH))


class IndexedLine(Base):
    """A credit line's state as its indexed events leave it, updated with each batch of events.

    Amounts are integers in fen and days are China Standard Time day numbers.
    Interest figures are those of the line's last event, because interest
    settles lazily on chain without an event; read the contract for today's.
    """

    __tablename__ = "indexed_lines"
    __table_args__ = (
        Index(
            "ix_indexed_lines_facility_status_maturity",
            "facility_address",
            "status",
            "maturity_day",
            "line_id",
        ),
        Index("ix_indexed_lines_borrower", "borrower"),
    )

    facility_address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), primary_key=True)
    line_id: Mapped[int] = mapped_column(UInt256(), primary_key=True)
    borrower: Mapped[str | None] = mapped_column(String(ADDRESS_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    credit_limit: Mapped[int] = mapped_column(UInt256())
    rate_bps: Mapped[int] = mapped_column(Integer)
    # A rate change scheduled by a renewal, or 0 and 0 when none is pending.
    next_rate_bps: Mapped[int] = mapped_column(Integer)
    next_rate_day: Mapped[int] = mapped_column(BigInteger)
    maturity_day: Mapped[int] = mapped_column(BigInteger)
    opened_day: Mapped[int | None] = mapped_column(BigInteger)
    principal: Mapped[int] = mapped_column(UInt256())
    interest_due: Mapped[int] = mapped_column(UInt256())
    overdue_interest: Mapped[int] = mapped_column(UInt256())
    locked: Mapped[int] = mapped_column(UInt256())
    written_off_outstanding: Mapped[int] = mapped_column(UInt256())
    pool_id: Mapped[int] = mapped_column(BigInteger)
    frozen_by_bank: Mapped[bool] = mapped_column(Boolean)
    frozen_by_regulator: Mapped[bool] = mapped_column(Boolean)
    review_flagged: Mapped[bool] = mapped_column(Boolean)
    revolving_cycles: Mapped[int] = mapped_column(Integer)
    # False only when the last repayment left nothing owed and nothing accruing.
    interest_may_be_owed: Mapped[bool] = mapped_column(Boolean)
    # The line's last entrusted drawdown, whose payout leaves the locked balance alone.
    entrusted_drawdown_id: Mapped[int | None] = mapped_column(BigInteger)
    last_block_number: Mapped[int] = mapped_column(BigInteger)
    last_log_index: Mapped[int] = mapped_column(Integer)
    event_count: Mapped[int] = mapped_column(Integer)
