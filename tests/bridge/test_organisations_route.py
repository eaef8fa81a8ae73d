"""Administration of organisations and credentials over HTTP."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import Member
from .support import FACILITY_A, FACILITY_B, assert_problem


def create(client: TestClient, admin: Member, body: dict[str, object]):
    return client.post("/v1/organisations", json=body, headers=admin.headers)


def test_create_bank_returns_working_credential(client: TestClient, admin: Member) -> None:
    response = create(
        client, admin, {"name": "Bank C", "kind": "bank", "facility_address": FACILITY_A.lower()}
    )

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    organisation = body["organisation"]
    assert organisation["facility_address"] == FACILITY_A
    assert response.headers["Location"] == f"/v1/organisations/{organisation['id']}"
    credential = body["credential"]
    assert credential["token"] == f"{credential['key_id']}.{credential['secret']}"
    headers = {"Authorization": f"Bearer {credential['token']}"}
    assert (
        client.get(
            "/v1/operations/00000000-0000-0000-0000-000000000000", headers=headers
        ).status_code
        == 404
    )


def test_create_auditor_without_facility(client: TestClient, admin: Member) -> None:
    response = create(client, admin, {"name": "Audit firm", "kind": "auditor"})

    assert response.status_code == 201
    assert response.json()["organisation"]["facility_address"] is None


def test_bank_requires_facility(client: TestClient, admin: Member) -> None:
    problem = assert_problem(create(client, admin, {"name": "Bank C", "kind": "bank"}), 422)

    assert "facility_address is required for a bank" in problem["detail"]


def test_non_bank_rejects_facility(client: TestClient, admin: Member) -> None:
    body = {"name": "Regulator", "kind": "regulator", "facility_address": FACILITY_A}

    problem = assert_problem(create(client, admin, body), 422)

    assert "only for banks" in problem["detail"]


def test_bad_facility_checksum_is_422(client: TestClient, admin: Member) -> None:
    bad = FACILITY_A[:-1] + ("c" if FACILITY_A[-1] == "C" else "C")
    body = {"name": "Bank C", "kind": "bank", "facility_address": bad}

    problem = assert_problem(create(client, admin, body), 422)

    assert problem["errors"][0]["field"] == "body.facility_address"
    assert "EIP-55" in problem["errors"][0]["message"]


def test_unknown_kind_is_422(client: TestClient, admin: Member) -> None:
    problem = assert_problem(create(client, admin, {"name": "X", "kind": "borrower"}), 422)

    assert problem["errors"][0]["field"] == "body.kind"


def test_duplicate_name_is_409(client: TestClient, admin: Member, bank: Member) -> None:
    body = {"name": "Bank A", "kind": "bank", "facility_address": FACILITY_B}

    problem = assert_problem(create(client, admin, body), 409)

    assert "'Bank A'" in problem["detail"]


def test_duplicate_facility_is_409(client: TestClient, admin: Member, bank: Member) -> None:
    body = {"name": "Bank C", "kind": "bank", "facility_address": FACILITY_A}

    problem = assert_problem(create(client, admin, body), 409)

    assert FACILITY_A in problem["detail"]


def test_list_and_read_organisations(client: TestClient, admin: Member, bank: Member) -> None:
    listed = client.get("/v1/organisations", headers=admin.headers).json()
    one = client.get(f"/v1/organisations/{bank.organisation.id}", headers=admin.headers).json()

    assert [item["name"] for item in listed] == ["Bank A", "Bridge operators"]
    assert one["kind"] == "bank"
    assert one["facility_address"] == FACILITY_A


def test_rotate_replaces_secret(client: TestClient, admin: Member, bank: Member) -> None:
    key_id = bank.credential.key_id

    response = client.post(f"/v1/credentials/{key_id}/rotate", headers=admin.headers)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    rotated = response.json()
    assert rotated["key_id"] == key_id
    assert rotated["secret"] != bank.credential.secret
    assert_problem(client.get("/v1/organisations", headers=bank.headers), 401)
    new_headers = {"Authorization": f"Bearer {rotated['token']}"}
    assert_problem(client.get("/v1/organisations", headers=new_headers), 403)


def test_revoke_blocks_credential(client: TestClient, admin: Member, bank: Member) -> None:
    key_id = bank.credential.key_id

    response = client.post(f"/v1/credentials/{key_id}/revoke", headers=admin.headers)

    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None
    assert "secret" not in response.json()
    assert_problem(client.get("/v1/organisations", headers=bank.headers), 401)


def test_revoke_twice_keeps_first_time(client: TestClient, admin: Member, bank: Member) -> None:
    path = f"/v1/credentials/{bank.credential.key_id}/revoke"

    first = client.post(path, headers=admin.headers).json()
    second = client.post(path, headers=admin.headers).json()

    assert second["revoked_at"] == first["revoked_at"]


def test_rotate_revoked_is_409(client: TestClient, admin: Member, bank: Member) -> None:
    key_id = bank.credential.key_id
    client.post(f"/v1/credentials/{key_id}/revoke", headers=admin.headers)

    problem = assert_problem(
        client.post(f"/v1/credentials/{key_id}/rotate", headers=admin.headers), 409
    )

    assert key_id in problem["detail"]


def test_unknown_credential_is_404(client: TestClient, admin: Member) -> None:
    for action in ("rotate", "revoke"):
        response = client.post(
            f"/v1/credentials/lbk_0000000000000000/{action}", headers=admin.headers
        )

        assert_problem(response, 404)


def test_issue_and_list_credentials(client: TestClient, admin: Member, bank: Member) -> None:
    path = f"/v1/organisations/{bank.organisation.id}/credentials"

    issued = client.post(path, headers=admin.headers)
    listed = client.get(path, headers=admin.headers)

    assert issued.status_code == 201
    key_ids = [item["key_id"] for item in listed.json()]
    assert set(key_ids) == {bank.credential.key_id, issued.json()["key_id"]}
    assert all(item["role"] == "bank" for item in listed.json())
    assert bank.credential.secret not in listed.text
    assert issued.json()["secret"] not in listed.text
