"""Alembic environment: runs the bridge's migrations against the configured database.

The database URL comes from `config.attributes["database_url"]` when the
migrations run through `storage.db.upgrade_to_head`, and from the LEDGER_
settings when Alembic's own command line runs them.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from ledger_bridge.storage.models import Base

# Arbitrary constant that names the bridge's migration lock on PostgreSQL.
POSTGRES_MIGRATION_LOCK_KEY = 7_318_062_146


def _database_url() -> str:
    url = context.config.attributes.get("database_url")
    if url:
        return str(url)
    from ledger_bridge.core.config import get_settings

    return get_settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Replicas that start together run the migrations one after another.
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"),
                    {"key": POSTGRES_MIGRATION_LOCK_KEY},
                )
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
