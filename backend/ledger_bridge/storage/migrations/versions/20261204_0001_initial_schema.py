"""Create organisations, credentials, request id sequences and operations.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger_bridge.storage.types import UInt256, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = ("bank", "auditor", "regulator", "admin")
OPERATION_STATES = ("accepted", "sending", "sent", "confirmed", "failed")


def _string_enum(values: tuple[str, ...], name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", _string_enum(ROLES, "role"), nullable=False),
        sa.Column("facility_address", sa.String(length=42), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("facility_address", name=op.f("uq_organisations_facility_address")),
        sa.UniqueConstraint("name", name=op.f("uq_organisations_name")),
    )
    op.create_table(
        "request_id_sequences",
        sa.Column("facility_address", sa.String(length=42), nullable=False),
        sa.Column("next_request_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("facility_address", name=op.f("pk_request_id_sequences")),
    )
    op.create_table(
        "credentials",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("role", _string_enum(ROLES, "role"), nullable=False),
        sa.Column("secret_hash", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("rotated_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_credentials_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_credentials")),
    )
    op.create_index(
        op.f("ix_credentials_organisation_id"), "credentials", ["organisation_id"], unique=False
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("credential_key_id", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("line_id", UInt256(), nullable=True),
        sa.Column("facility_address", sa.String(length=42), nullable=True),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", _string_enum(OPERATION_STATES, "operation_state"), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("revert", sa.JSON(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["credential_key_id"],
            ["credentials.key_id"],
            name=op.f("fk_operations_credential_key_id_credentials"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_operations_organisation_id_organisations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
        sa.UniqueConstraint(
            "facility_address",
            "request_id",
            name=op.f("uq_operations_facility_address_request_id"),
        ),
        sa.UniqueConstraint(
            "organisation_id",
            "idempotency_key",
            name=op.f("uq_operations_organisation_id_idempotency_key"),
        ),
    )
    op.create_index(
        "ix_operations_state_created_at", "operations", ["state", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_operations_state_created_at", table_name="operations")
    op.drop_table("operations")
    op.drop_index(op.f("ix_credentials_organisation_id"), table_name="credentials")
    op.drop_table("credentials")
    op.drop_table("request_id_sequences")
    op.drop_table("organisations")
