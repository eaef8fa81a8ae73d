"""Authentication (401) and role checks (403), which run before any route code."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from ledger_bridge.api.deps import (
    AdminPrincipal,
    AnyPrincipal,
    AuditorPrincipal,
    BankPrincipal,
    RegulatorPrincipal,
)
from ledger_bridge.app import create_app
from ledger_bridge.core.config import Settings
from ledger_bridge.core.security import Role
from ledger_bridge.storage.organisations import revoke_credential, rotate_credential

from .conftest import Member, MemberFactory
from .support import FACILITY_A, assert_problem

# One route per principal alias, so each role can be tried against each alias.
# The handlers record that they ran, to show that rejected requests never reach them.
role_router = APIRouter(prefix="/probe")
handler_calls: list[str] = []


@role_router.get("/any")
def for_anyone(principal: AnyPrincipal) -> dict[str, str]:
    handler_calls.append("any")
    return {"organisation": principal.organisation_name, "role": principal.role.value}


@role_router.get("/bank")
def for_bank(principal: BankPrincipal) -> dict[str, str | None]:
    handler_calls.append("bank")
    return {"facility": principal.facility_address}


@role_router.get("/auditor")
def for_auditor(principal: AuditorPrincipal) -> dict[str, str]:
    handler_calls.append("auditor")
    return {"role": principal.role.value}


@role_router.get("/regulator")
def for_regulator(principal: RegulatorPrincipal) -> dict[str, str]:
    handler_calls.append("regulator")
    return {"role": principal.role.value}


@role_router.get("/admin")
def for_admin(principal: AdminPrincipal) -> dict[str, str]:
    handler_calls.append("admin")
    return {"role": principal.role.value}


@pytest.fixture
def probe(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(role_router)
    handler_calls.clear()
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def members(probe: TestClient, make_member: MemberFactory) -> dict[Role, Member]:
    return {
        Role.BANK: make_member(Role.BANK, "Bank A", FACILITY_A),
        Role.AUDITOR: make_member(Role.AUDITOR),
        Role.REGULATOR: make_member(Role.REGULATOR),
        Role.ADMIN: make_member(Role.ADMIN),
    }


@pytest.mark.parametrize("role", list(Role), ids=[role.value for role in Role])
def test_each_role_reaches_own_route(
    probe: TestClient, members: dict[Role, Member], role: Role
) -> None:
    response = probe.get(f"/probe/{role.value}", headers=members[role].headers)

    assert response.status_code == 200
    assert handler_calls == [role.value]


@pytest.mark.parametrize("role", list(Role), ids=[role.value for role in Role])
def test_each_role_forbidden_elsewhere(
    probe: TestClient, members: dict[Role, Member], role: Role
) -> None:
    for other in Role:
        if other is role:
            continue
        response = probe.get(f"/probe/{other.value}", headers=members[role].headers)

        problem = assert_problem(response, 403)
        assert repr(role.value) in problem["detail"]
        assert other.value in problem["detail"]
    assert handler_calls == []


def test_any_principal_sees_organisation(probe: TestClient, members: dict[Role, Member]) -> None:
    response = probe.get("/probe/any", headers=members[Role.AUDITOR].headers)

    assert response.json() == {
        "organisation": members[Role.AUDITOR].organisation.name,
        "role": "auditor",
    }


def test_bank_principal_has_facility(probe: TestClient, members: dict[Role, Member]) -> None:
    response = probe.get("/probe/bank", headers=members[Role.BANK].headers)

    assert response.json() == {"facility": FACILITY_A}


def test_missing_header_is_401_without_error_code(probe: TestClient) -> None:
    response = probe.get("/probe/any")

    problem = assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="ledger-bridge"'
    assert "no Authorization header" in problem["detail"]
    assert handler_calls == []


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer no-dot-here",
        "Bearer lbk_0123456789abcdef.",
        "Bearer wrongprefix_0123456789abcdef.secret",
        "Bearer lbk_0123456789abcdef." + "x" * 300,
    ],
)
def test_malformed_credential_is_401(probe: TestClient, header: str) -> None:
    response = probe.get("/probe/any", headers={"Authorization": header})

    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert handler_calls == []


def test_unknown_key_id_is_401(probe: TestClient, members: dict[Role, Member]) -> None:
    secret = members[Role.BANK].credential.secret
    response = probe.get(
        "/probe/any", headers={"Authorization": f"Bearer lbk_0000000000000000.{secret}"}
    )

    problem = assert_problem(response, 401)
    assert "lbk_0000000000000000" in problem["detail"]


def test_wrong_secret_is_401(probe: TestClient, members: dict[Role, Member]) -> None:
    key_id = members[Role.BANK].credential.key_id
    response = probe.get("/probe/any", headers={"Authorization": f"Bearer {key_id}.wrong-secret"})

    assert_problem(response, 401)
    assert handler_calls == []


def test_revoked_credential_is_401(
    probe: TestClient, members: dict[Role, Member], session_factory: sessionmaker[Session]
) -> None:
    bank = members[Role.BANK]
    assert probe.get("/probe/any", headers=bank.headers).status_code == 200

    with session_factory() as session:
        revoke_credential(session, bank.credential.key_id)

    assert_problem(probe.get("/probe/any", headers=bank.headers), 401)


def test_rotated_credential_rejects_old_secret(
    probe: TestClient, members: dict[Role, Member], session_factory: sessionmaker[Session]
) -> None:
    bank = members[Role.BANK]
    assert probe.get("/probe/any", headers=bank.headers).status_code == 200

    with session_factory() as session:
        rotated = rotate_credential(session, bank.credential.key_id)

    assert_problem(probe.get("/probe/any", headers=bank.headers), 401)
    new_headers = {"Authorization": f"Bearer {rotated.token}"}
    assert probe.get("/probe/any", headers=new_headers).status_code == 200


def test_secret_never_logged_or_returned(
    probe: TestClient, members: dict[Role, Member], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bank = members[Role.BANK]
    key_id = bank.credential.key_id

    ok = probe.get("/probe/any", headers=bank.headers)
    rejected = probe.get("/probe/any", headers={"Authorization": f"Bearer {key_id}.guess"})

    secret = bank.credential.secret
    assert secret not in ok.text
    assert "guess" not in rejected.text
    assert secret not in caplog.text
    assert "guess" not in caplog.text


def test_admin_routes_reject_other_roles(probe: TestClient, members: dict[Role, Member]) -> None:
    body = {"name": "Intruder", "kind": "admin"}
    for role in (Role.BANK, Role.AUDITOR, Role.REGULATOR):
        response = probe.post("/v1/organisations", json=body, headers=members[role].headers)

        assert_problem(response, 403)
    assert_problem(probe.post("/v1/organisations", json=body), 401)
