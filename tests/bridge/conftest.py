"""Fixtures for the bridge's tests: a real app on a real database.

Every test that takes `database_url` runs on a SQLite file in a temporary
folder, and again on PostgreSQL when LEDGER_TEST_POSTGRES_URL names a server
where the user may create databases (one fresh database per test).
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import StarletteDeprecationWarning

from ledger_bridge.app import create_app
from ledger_bridge.core.config import Settings
from ledger_bridge.core.security import IssuedCredential, Role
from ledger_bridge.storage.models import Organisation
from ledger_bridge.storage.organisations import create_organisation

from .support import FACILITY_A, FACILITY_B

with warnings.catch_warnings():
    # Starlette 1.x warns that its test client will move from httpx to httpx2.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

POSTGRES_URL_VARIABLE = "LEDGER_TEST_POSTGRES_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bridge.db'}"
        return
    server_url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not server_url:
        pytest.skip(f"{POSTGRES_URL_VARIABLE} is not set, so PostgreSQL tests do not run")
    yield from _fresh_postgres_database(server_url)


def _fresh_postgres_database(server_url: str) -> Iterator[str]:
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        environment="development",
        database_url=database_url,
        deployment_file=tmp_path / "deployment.json",
        chain_id=31337,
        max_request_bytes=4096,
        log_format="text",
        # These tests cover the HTTP layer alone; tests/integration runs it with a chain.
        chain_enabled=False,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def session_factory(client: TestClient) -> sessionmaker[Session]:
    """Sessions on the app's database, after the app has migrated it."""
    return client.app.state.session_factory


@dataclass(frozen=True)
class Member:
    """An organisation created for a test, with the header that authenticates as it."""

    organisation: Organisation
    credential: IssuedCredential

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential.token}"}


MemberFactory = Callable[..., Member]


@pytest.fixture
def make_member(session_factory: sessionmaker[Session]) -> MemberFactory:
    def make(kind: Role, name: str | None = None, facility: str | None = None) -> Member:
        with session_factory() as session:
            created = create_organisation(
                session,
                name=name or f"{kind.value} {uuid.uuid4().hex[:8]}",
                kind=kind,
                facility_address=facility,
            )
        return Member(created.organisation, created.credential)

    return make


@pytest.fixture
def admin(make_member: MemberFactory) -> Member:
    return make_member(Role.ADMIN, "Bridge operators")


@pytest.fixture
def bank(make_member: MemberFactory) -> Member:
    return make_member(Role.BANK, "Bank A", FACILITY_A)


@pytest.fixture
def other_bank(make_member: MemberFactory) -> Member:
    return make_member(Role.BANK, "Bank B", FACILITY_B)


@pytest.fixture
def auditor(make_member: MemberFactory) -> Member:
    return make_member(Role.AUDITOR, "Audit firm")


@pytest.fixture
def regulator(make_member: MemberFactory) -> Member:
    return make_member(Role.REGULATOR, "Regulator")
