"""The OpenAPI document: tags by user, summaries, examples and problem responses on every route."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from ledger_bridge.api.problems import PROBLEM_MEDIA_TYPE
from ledger_bridge.app import create_app
from ledger_bridge.categories import CATEGORIES
from ledger_bridge.chain.calls import CALL_TARGETS, CONTRACT_FUNCTIONS, CallTarget
from ledger_bridge.chain.contracts import CREDIT_FACILITY, FUND_FLOW_RULES, load_abi
from ledger_bridge.chain.values import date_to_day, day_to_date
from ledger_bridge.core.config import Settings

USER_TAGS = {"bank", "auditor", "regulator", "admin"}
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    settings = Settings(
        environment="development",
        database_url="sqlite:///:memory:",
        chain_id=31337,
        chain_enabled=False,
        migrate_on_start=False,
    )
    return create_app(settings).openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def write_operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [item for item in operations(document) if "x-operation-kind" in item[2]]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref")
    if reference is None:
        return schema
    return document["components"]["schemas"][reference.rsplit("/", 1)[-1]]


def test_every_route_has_summary_and_user_tags(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        assert operation.get("summary"), f"{method} {path} has no summary"
        tags = set(operation.get("tags", []))
        assert tags, f"{method} {path} has no tag"
        assert tags <= USER_TAGS, f"{method} {path} has tags {tags - USER_TAGS}"


def test_every_operation_kind_has_one_route(document: dict[str, Any]) -> None:
    kinds = [operation["x-operation-kind"] for _, _, operation in write_operations(document)]

    assert sorted(kinds) == sorted(CONTRACT_FUNCTIONS)


def test_write_routes_document_responses(document: dict[str, Any]) -> None:
    for method, path, operation in write_operations(document):
        responses = operation["responses"]
        accepted = responses["202"]
        assert "Location" in accepted["headers"], path
        assert accepted["content"]["application/json"]["example"]["state"] == "accepted"
        for status in ("400", "401", "403", "404", "422"):
            assert PROBLEM_MEDIA_TYPE in responses[status]["content"], f"{method} {path} {status}"
        assert operation["x-signer"], path
        assert "signed with" in operation["description"], path


def test_write_request_bodies_have_examples(document: dict[str, Any]) -> None:
    for method, path, operation in write_operations(document):
        body = operation.get("requestBody")
        if body is None:
            continue
        schema = body["content"]["application/json"]["schema"]
        options = schema.get("anyOf", [schema])
        models = [resolve(document, item) for item in options if item.get("type") != "null"]
        assert any(model.get("examples") for model in models), f"{method} {path}"


def test_contract_functions_exist_in_abis() -> None:
    names = {
        contract: {item["name"] for item in load_abi(contract) if item["type"] == "function"}
        for contract in (CREDIT_FACILITY, FUND_FLOW_RULES)
    }
    for kind, function in CONTRACT_FUNCTIONS.items():
        contract = FUND_FLOW_RULES if CALL_TARGETS[kind] is CallTarget.RULES else CREDIT_FACILITY
        assert function in names[contract], f"{kind}: {contract}.{function}"


def test_category_codes_are_documented(document: dict[str, Any]) -> None:
    schema = document["components"]["schemas"]["PayeeCreate"]["properties"]["category"]

    assert schema["enum"] == sorted(CATEGORIES)
    for code, category in CATEGORIES.items():
        assert f"`{code}` {category.name}" in schema["description"]
    assert "`901` crypto-asset exchange" in document["paths"]["/v1/rules"]["get"]["description"]


def test_line_read_takes_day(document: dict[str, Any]) -> None:
    parameters = document["paths"]["/v1/lines/{line_id}"]["get"]["parameters"]

    assert "on" in {parameter["name"] for parameter in parameters}


@pytest.mark.parametrize(
    ("day", "number"),
    [
        pytest.param(date(1970, 1, 2), 1, id="first-day"),
        pytest.param(date(2026, 1, 1), 20_454, id="2026"),
        pytest.param(date(2100, 3, 1), 47_541, id="2100"),
    ],
)
def test_date_to_day_inverts_day_to_date(day: date, number: int) -> None:
    assert date_to_day(day) == number
    assert day_to_date(number) == day
