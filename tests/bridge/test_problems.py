"""Every error leaves the app as an RFC 9457 problem, and bad input never causes a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Self

import pytest
from fastapi import APIRouter, HTTPException
from fastapi.testclient import TestClient
from pydantic import model_validator

from ledger_bridge.api.middleware import MAX_JSON_DEPTH
from ledger_bridge.api.schemas import RequestBody
from ledger_bridge.app import create_app
from ledger_bridge.core.config import Settings
from ledger_bridge.money import Address, AmountStr

from .support import PAYEE, assert_problem

# Routes that exist only in these tests, to reach each kind of error.
probe_router = APIRouter(prefix="/probe")


class ProbeBody(RequestBody):
    amount: AmountStr
    payee: Address
    note: str | None = None

    @model_validator(mode="after")
    def _check_note(self) -> Self:
        if self.note == "forbidden":
            raise ValueError("note must not be 'forbidden'; choose another note")
        return self


@probe_router.post("/body")
def accept_body(body: ProbeBody) -> dict[str, str]:
    return {"amount": str(body.amount)}


@probe_router.get("/crash")
def crash() -> None:
    raise RuntimeError("secret internal detail")


@probe_router.get("/teapot")
def teapot() -> None:
    raise HTTPException(status_code=418, detail="Brew coffee elsewhere.")


@pytest.fixture
def probe(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    app.include_router(probe_router)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_valid_body_passes(probe: TestClient) -> None:
    response = probe.post("/probe/body", json={"amount": "10.50", "payee": PAYEE})

    assert response.status_code == 200
    assert response.json() == {"amount": "1050"}


@pytest.mark.parametrize(
    "content", [b"{", b"{'amount': '1'}", b'{"amount": "1",}', b"\xff\xfe", b"nul"]
)
def test_malformed_json_is_400(probe: TestClient, content: bytes) -> None:
    response = probe.post(
        "/probe/body", content=content, headers={"Content-Type": "application/json"}
    )

    problem = assert_problem(response, 400)
    assert problem["type"] == "urn:ledger-bridge:problem:malformed-json"
    assert "Content-Type: application/json" in problem["detail"]


@pytest.mark.parametrize(
    "content",
    [b"[" * 100_000 + b"]" * 100_000, b'{"amount": ' + b"9" * 5000 + b"}"],
    ids=["deep", "long"],
)
def test_unparsable_json_is_400(settings: Settings, content: bytes) -> None:
    app = create_app(settings.model_copy(update={"max_request_bytes": 1_048_576}))
    app.include_router(probe_router)

    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.post(
            "/probe/body", content=content, headers={"Content-Type": "application/json"}
        )

    problem = assert_problem(response, 400)
    assert problem["type"] == "urn:ledger-bridge:problem:malformed-json"


def test_depth_at_limit_passes_to_validation(probe: TestClient) -> None:
    nested = b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    content = b'{"amount": "1.00", "payee": "%s", "note": %s}' % (PAYEE.encode(), nested)

    response = probe.post(
        "/probe/body", content=content, headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 422)


def test_depth_over_limit_is_400(probe: TestClient) -> None:
    nested = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    content = b'{"note": %s}' % nested

    response = probe.post(
        "/probe/body", content=content, headers={"Content-Type": "application/json"}
    )

    problem = assert_problem(response, 400)
    assert f"more than {MAX_JSON_DEPTH} levels" in problem["detail"]


def test_brackets_inside_strings_not_counted(probe: TestClient) -> None:
    note = '[{\\"' * 40
    body = {"amount": "1.00", "payee": PAYEE, "note": note}

    response = probe.post("/probe/body", json=body)

    assert response.status_code == 200


def test_wrong_types_list_each_field(probe: TestClient) -> None:
    response = probe.post("/probe/body", json={"amount": 10.5, "payee": "0x12", "note": 7})

    problem = assert_problem(response, 422)
    fields = {error["field"]: error["message"] for error in problem["errors"]}
    assert set(fields) == {"body.amount", "body.payee", "body.note"}
    assert "JSON number" in fields["body.amount"]
    assert "0x12" in fields["body.payee"]
    assert problem["type"] == "urn:ledger-bridge:problem:validation-error"


def test_missing_and_unknown_fields(probe: TestClient) -> None:
    response = probe.post("/probe/body", json={"payee": PAYEE, "amuont": "1.00"})

    problem = assert_problem(response, 422)
    fields = {error["field"]: error["message"] for error in problem["errors"]}
    assert "required" in fields["body.amount"]
    assert "not allowed" in fields["body.amuont"]


def test_validator_message_without_prefix(probe: TestClient) -> None:
    response = probe.post(
        "/probe/body", json={"amount": "1.00", "payee": PAYEE, "note": "forbidden"}
    )

    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "body", "message": "note must not be 'forbidden'; choose another note"}
    ]


def test_single_error_detail_names_field(probe: TestClient) -> None:
    response = probe.post("/probe/body", json={"amount": "1.001", "payee": PAYEE})

    problem = assert_problem(response, 422)
    assert problem["detail"].startswith("Field body.amount is invalid.")
    assert "more than two decimals" in problem["detail"]


@pytest.mark.parametrize("body", [b"[]", b'"1.00"', b"null", b"1"])
def test_body_not_an_object_is_422(probe: TestClient, body: bytes) -> None:
    response = probe.post("/probe/body", content=body, headers={"Content-Type": "application/json"})

    assert_problem(response, 422)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(probe: TestClient, content_type: str) -> None:
    response = probe.post(
        "/probe/body", content=b'{"amount": "1.00"}', headers={"Content-Type": content_type}
    )

    problem = assert_problem(response, 415)
    assert content_type in problem["detail"]


def test_missing_content_type_is_415(probe: TestClient) -> None:
    response = probe.post("/probe/body", content=b'{"amount": "1.00"}')

    assert "content-type" not in response.request.headers
    assert_problem(response, 415)


def test_json_with_charset_is_accepted(probe: TestClient) -> None:
    response = probe.post(
        "/probe/body",
        content=b'{"amount": "1.00", "payee": "%s"}' % PAYEE.encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )

    assert response.status_code == 200


def test_oversized_body_is_413(probe: TestClient, settings: Settings) -> None:
    note = "x" * settings.max_request_bytes
    response = probe.post("/probe/body", json={"amount": "1.00", "payee": PAYEE, "note": note})

    problem = assert_problem(response, 413)
    assert str(settings.max_request_bytes) in problem["detail"]


def test_oversized_chunked_body_is_413(probe: TestClient, settings: Settings) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            yield b" " * settings.max_request_bytes

    response = probe.post(
        "/probe/body", content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert_problem(response, 413)


def test_body_at_limit_is_read(probe: TestClient, settings: Settings) -> None:
    body = b'{"amount": "1.00", "payee": "%s"}' % PAYEE.encode()
    padded = body + b" " * (settings.max_request_bytes - len(body))

    response = probe.post(
        "/probe/body", content=padded, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 200


def test_unknown_route_is_404_problem(probe: TestClient) -> None:
    problem = assert_problem(probe.get("/v1/nothing-here"), 404)

    assert problem["type"] == "about:blank"
    assert problem["instance"] == "/v1/nothing-here"
    assert "/docs" in problem["detail"]


def test_wrong_method_is_405_problem(probe: TestClient) -> None:
    response = probe.delete("/health")

    problem = assert_problem(response, 405)
    assert "DELETE" in problem["detail"]
    assert response.headers["Allow"] == "GET"


def test_http_exception_keeps_detail(probe: TestClient) -> None:
    problem = assert_problem(probe.get("/probe/teapot"), 418)

    assert problem["detail"] == "Brew coffee elsewhere."
    assert problem["title"] == "I'm a Teapot"


def test_unexpected_error_is_500_without_detail(probe: TestClient) -> None:
    response = probe.get("/probe/crash")

    problem = assert_problem(response, 500)
    assert problem["type"] == "urn:ledger-bridge:problem:internal-error"
    assert "secret internal detail" not in response.text


def test_openapi_describes_problems(probe: TestClient) -> None:
    document = probe.get("/openapi.json").json()

    schemas = document["components"]["schemas"]
    assert {"Problem", "FieldError"} <= schemas.keys()
    assert "HTTPValidationError" not in schemas
    assert "$defs" not in json.dumps(document)
    responses = document["paths"]["/probe/body"]["post"]["responses"]
    assert list(responses["422"]["content"]) == ["application/problem+json"]
