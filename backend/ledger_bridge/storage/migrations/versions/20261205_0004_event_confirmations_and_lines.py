"""Add confirmations, chain identity, recent block hashes and indexed lines to the event index.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger_bridge.storage.types import UInt256

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The index is a copy of the chain's logs. Emptying it makes the indexer read them again
    # from the deployment block and fill the new columns and the line table on the way.
    op.execute(sa.text("DELETE FROM chain_events"))
    op.execute(sa.text("DELETE FROM indexer_checkpoints"))
    with op.batch_alter_table("chain_events") as batch:
        batch.add_column(sa.Column("confirmed", sa.Boolean(), nullable=False))
    op.create_index(
        "ix_chain_events_contract_position",
        "chain_events",
        ["contract_address", "block_number", "log_index"],
    )
    op.create_index(
        "ix_chain_events_event_position", "chain_events", ["event", "block_number", "log_index"]
    )
    with op.batch_alter_table("indexer_checkpoints") as batch:
        batch.add_column(sa.Column("confirmed_block_number", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("chain_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("genesis_hash", sa.String(length=66), nullable=True))
    op.create_table(
        "indexer_block_hashes",
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("block_number", name=op.f("pk_indexer_block_hashes")),
    )
    _create_indexed_lines()


def _create_indexed_lines() -> None:
    op.create_table(
        "indexed_lines",
        sa.Column("facility_address", sa.String(length=42), nullable=False),
        sa.Column("line_id", UInt256(), nullable=False),
        sa.Column("borrower", sa.String(length=42), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("credit_limit", UInt256(), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("next_rate_bps", sa.Integer(), nullable=False),
        sa.Column("next_rate_day", sa.BigInteger(), nullable=False),
        sa.Column("maturity_day", sa.BigInteger(), nullable=False),
        sa.Column("opened_day", sa.BigInteger(), nullable=True),
        sa.Column("principal", UInt256(), nullable=False),
        sa.Column("interest_due", UInt256(), nullable=False),
        sa.Column("overdue_interest", UInt256(), nullable=False),
        sa.Column("locked", UInt256(), nullable=False),
        sa.Column("written_off_outstanding", UInt256(), nullable=False),
        sa.Column("pool_id", sa.BigInteger(), nullable=False),
        sa.Column("frozen_by_bank", sa.Boolean(), nullable=False),
        sa.Column("frozen_by_regulator", sa.Boolean(), nullable=False),
        sa.Column("review_flagged", sa.Boolean(), nullable=False),
        sa.Column("revolving_cycles", sa.Integer(), nullable=False),
        sa.Column("interest_may_be_owed", sa.Boolean(), nullable=False),
        sa.Column("entrusted_drawdown_id", sa.BigInteger(), nullable=True),
        sa.Column("last_block_number", sa.BigInteger(), nullable=False),
        sa.Column("last_log_index", sa.Integer(), nullable=False),
        sa.Column("event_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("facility_address", "line_id", name=op.f("pk_indexed_lines")),
    )
    op.create_index(
        "ix_indexed_lines_facility_status_maturity",
        "indexed_lines",
        ["facility_address", "status", "maturity_day", "line_id"],
    )
    op.create_index("ix_indexed_lines_borrower", "indexed_lines", ["borrower"])


def downgrade() -> None:
    op.drop_index("ix_indexed_lines_borrower", table_name="indexed_lines")
    op.drop_index("ix_indexed_lines_facility_status_maturity", table_name="indexed_lines")
    op.drop_table("indexed_lines")
    op.drop_table("indexer_block_hashes")
    with op.batch_alter_table("indexer_checkpoints") as batch:
        batch.drop_column("genesis_hash")
        batch.drop_column("chain_id")
        batch.drop_column("confirmed_block_number")
    op.drop_index("ix_chain_events_event_position", table_name="chain_events")
    op.drop_index("ix_chain_events_contract_position", table_name="chain_events")
    with op.batch_alter_table("chain_events") as batch:
        batch.drop_column("confirmed")
