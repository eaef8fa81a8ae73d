"""Create signed transactions, chain events and indexer checkpoints.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger_bridge.storage.types import UInt256, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite autoincrements only an INTEGER PRIMARY KEY.
EVENT_ID_TYPE = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "signed_transactions",
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("operation_id", sa.Uuid(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("raw_transaction", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_signed_transactions_operation_id_operations"),
        ),
        sa.PrimaryKeyConstraint("tx_hash", name=op.f("pk_signed_transactions")),
    )
    op.create_index(
        op.f("ix_signed_transactions_operation_id"),
        "signed_transactions",
        ["operation_id"],
        unique=False,
    )
    op.create_index(
        "ix_signed_transactions_sender_nonce", "signed_transactions", ["sender", "nonce"]
    )
    op.create_table(
        "chain_events",
        sa.Column("id", EVENT_ID_TYPE, autoincrement=True, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", UTCDateTime(), nullable=False),
        sa.Column("transaction_hash", sa.String(length=66), nullable=False),
        sa.Column("transaction_index", sa.Integer(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("contract_address", sa.String(length=42), nullable=False),
        sa.Column("contract_name", sa.String(length=64), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("line_id", UInt256(), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_events")),
        sa.UniqueConstraint(
            "transaction_hash",
            "log_index",
            name=op.f("uq_chain_events_transaction_hash_log_index"),
        ),
    )
    op.create_index("ix_chain_events_block_number", "chain_events", ["block_number"])
    op.create_index(
        "ix_chain_events_line",
        "chain_events",
        ["contract_address", "line_id", "block_number", "log_index"],
    )
    op.create_table(
        "indexer_checkpoints",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_indexer_checkpoints")),
    )


def downgrade() -> None:
    op.drop_table("indexer_checkpoints")
    op.drop_index("ix_chain_events_line", table_name="chain_events")
    op.drop_index("ix_chain_events_block_number", table_name="chain_events")
    op.drop_table("chain_events")
    op.drop_index("ix_signed_transactions_sender_nonce", table_name="signed_transactions")
    op.drop_index(op.f("ix_signed_transactions_operation_id"), table_name="signed_transactions")
    op.drop_table("signed_transactions")
