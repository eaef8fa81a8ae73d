"""Security checks a bank requires of the bridge, against `ledger-bridge serve` on a real Anvil.

- Read routes, taken from the app: every role, no credential, and another
  organisation of the same role get 401, 403 or 404, never the first
  organisation's data. The write routes are covered the same way by
  tests/integration/test_writes_access.py.
- Credentials appear in no log line and in no response except the one-time
  issuance output, including failed requests and the CLI.
- Request bodies above LEDGER_MAX_REQUEST_BYTES get 413 and store nothing,
  with and without Content-Length.
- Each credential has its own budget of requests per minute, failed ones
  counted; /health, /ready and /metrics are exempt.
- No git-tracked file holds a private key, a PEM block or a bridge token,
  except Anvil's published development keys.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from fastapi.routing import iter_route_contexts
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from integration.conftest import BORROWER_INDEX, REPOSITORY, OpenLine, _create_member
from ledger_bridge.app import create_app
from ledger_bridge.core.config import (
    DEVELOPMENT_ACCOUNT_COUNT,
    Settings,
    development_private_keys,
)
from ledger_bridge.core.logging import JsonFormatter, TextFormatter
from ledger_bridge.core.security import Role
from ledger_bridge.storage.db import create_db_engine, create_session_factory

from .conftest import (
    BridgeServer,
    FootprintReader,
    Member,
    run_cli,
    serve_app_in_thread,
    wait_until_quiet,
)

PROBLEM = "application/problem+json"
TOKEN_SHAPE = re.compile(r"lbk_[0-9a-f]{16}\.[A-Za-z0-9_\-]{16,}")
RATE_LIMIT = 5


# --- read routes × callers ---------------------------------------------------------------


@dataclass(frozen=True)
class ReadRoute:
    """A read route and the roles that may use it."""

    path: str
    roles: frozenset[str]
    # Whether the response is about one bank's facility, so another bank must not see it.
    bank_scoped: bool = True


BANK, AUDITOR, REGULATOR, ADMIN = "bank", "auditor", "regulator", "admin"
ANYONE = frozenset({BANK, AUDITOR, REGULATOR, ADMIN})
LINE_READERS = frozenset({BANK, AUDITOR, REGULATOR})
HISTORY_READERS = frozenset({BANK, AUDITOR})
OVERSIGHT = frozenset({AUDITOR, REGULATOR})

READ_ROUTES = [
    ReadRoute("/v1/operations/{operation_id}", ANYONE),
    ReadRoute("/v1/organisations", frozenset({ADMIN}), bank_scoped=False),
    ReadRoute("/v1/organisations/{organisation_id}", frozenset({ADMIN}), bank_scoped=False),
    ReadRoute(
        "/v1/organisations/{organisation_id}/credentials", frozenset({ADMIN}), bank_scoped=False
    ),
    ReadRoute("/v1/lines/{line_id}", LINE_READERS),
    ReadRoute("/v1/lines/{line_id}/history", HISTORY_READERS),
    ReadRoute("/v1/payees/{address}", LINE_READERS, bank_scoped=False),
    ReadRoute("/v1/rules", LINE_READERS, bank_scoped=False),
    ReadRoute("/v1/regulator/rules", OVERSIGHT, bank_scoped=False),
    ReadRoute("/v1/regulator/payouts", OVERSIGHT, bank_scoped=False),
    ReadRoute("/v1/regulator/refused-payouts", OVERSIGHT, bank_scoped=False),
    ReadRoute("/v1/regulator/verification", OVERSIGHT, bank_scoped=False),
    ReadRoute("/v1/audit/lines/{line_id}/events", HISTORY_READERS),
    ReadRoute("/v1/audit/lines/{line_id}/events/export", HISTORY_READERS),
    ReadRoute("/v1/audit/borrowers/{borrower}/events", HISTORY_READERS),
    ReadRoute("/v1/audit/borrowers/{borrower}/events/export", HISTORY_READERS),
    ReadRoute("/v1/audit/facilities/{facility_address}/events", HISTORY_READERS),
    ReadRoute("/v1/audit/facilities/{facility_address}/events/export", HISTORY_READERS),
    ReadRoute("/v1/audit/lines/{line_id}/check", HISTORY_READERS),
    ReadRoute("/v1/portfolio/maturing", LINE_READERS),
    ReadRoute("/v1/portfolio/review-flagged", LINE_READERS),
    ReadRoute("/v1/portfolio/interest-overdue", LINE_READERS),
]
# Routes without a credential, for load balancers, monitoring and the API documentation.
PUBLIC_PATHS = frozenset(
    {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
CALLERS = (None, BANK, AUDITOR, REGULATOR, ADMIN)


def read_cases() -> list[Any]:
    cases = []
    for route in READ_ROUTES:
        for caller in CALLERS:
            cases.append(pytest.param(route, caller, id=f"{route.path}-{caller or 'none'}"))
    return cases


@pytest.fixture(scope="module")
def read_targets(
    http: httpx.Client,
    bank: Member,
    admin: Member,
    open_line: OpenLine,
    w3: Any,
    deployment: Any,
) -> dict[str, str]:
    """Ids of the first bank's data: a line on its facility and an operation it submitted."""
    line_id = open_line(1_000_000)
    headers = {**bank.headers, "Idempotency-Key": f"security-{uuid.uuid4()}"}
    accepted = http.post("/v1/pools", json={"limit": "100.00"}, headers=headers)
    assert accepted.status_code == 202, accepted.text
    return {
        "line_id": str(line_id),
        "operation_id": accepted.json()["id"],
        "organisation_id": str(bank.organisation_id),
        "address": w3.eth.accounts[BORROWER_INDEX],
        "borrower": w3.eth.accounts[BORROWER_INDEX],
        "facility_address": deployment.facilities[0].address,
    }


def test_table_covers_every_read_route(bridge: BridgeServer) -> None:
    app = create_app(Settings(chain_enabled=False, database_url="sqlite:///:memory:"))
    declared = {
        context.path
        for context in iter_route_contexts(app.routes)
        if "GET" in (context.methods or set()) and context.path not in PUBLIC_PATHS
    }
    tabled = {route.path for route in READ_ROUTES}

    assert declared - tabled == set(), "read routes missing from READ_ROUTES"
    assert tabled - declared == set(), "READ_ROUTES lists routes the app does not have"


@pytest.mark.parametrize(("route", "caller"), read_cases())
def test_read_route_answers_caller(
    route: ReadRoute,
    caller: str | None,
    request: pytest.FixtureRequest,
    http: httpx.Client,
    read_targets: dict[str, str],
) -> None:
    path = route.path.format(**read_targets)
    facility = read_targets["facility_address"]
    # Auditors and regulators name the facility because two are deployed. A bank uses its own.
    params = {"facility": facility} if caller in OVERSIGHT else {}
    if route.path.endswith("/export"):
        params["format"] = "csv"
    headers = {} if caller is None else request.getfixturevalue(caller).headers

    response = http.get(path, params=params, headers=headers)

    if caller is None:
        assert_problem(response, 401)
    elif caller not in route.roles:
        assert_problem(response, 403)
    else:
        assert response.status_code < 500, response.text
        _check_other_organisation(route, caller, path, params, request, http, read_targets)


def _check_other_organisation(
    route: ReadRoute,
    caller: str,
    path: str,
    params: dict[str, str],
    request: pytest.FixtureRequest,
    http: httpx.Client,
    read_targets: dict[str, str],
) -> None:
    """Send the same request as another organisation of the caller's role."""
    facility = read_targets["facility_address"]
    other: Member = request.getfixturevalue(f"other_{caller}")
    if route.path.startswith("/v1/operations/"):
        # Operations belong to the organisation that submitted them: the bank.
        assert_problem(http.get(path, headers=other.headers), 404)
        return
    if caller != BANK or not route.bank_scoped:
        # Auditors, regulators and admins read across organisations by design.
        assert http.get(path, params=params, headers=other.headers).status_code < 500
        return
    for other_params in (params, {**params, "facility": facility}):
        response = http.get(path, params=other_params, headers=other.headers)
        assert response.status_code in (200, 404), response.text
        if response.status_code == 200:
            assert facility.lower() not in response.text.lower(), "another bank's data leaked"
    if "{" not in route.path or "{borrower}" in route.path:
        return
    # The path names the first bank's line or facility, which the other bank must not find.
    assert_problem(http.get(path, params=params, headers=other.headers), 404)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    return problem


# --- credentials in logs and responses ---------------------------------------------------


@pytest.fixture(scope="module")
def limited_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BridgeServer]:
    """A bridge without a chain and with a budget of RATE_LIMIT requests per minute."""
    directory = tmp_path_factory.mktemp("limited-bridge")
    settings = Settings(
        chain_enabled=False,
        database_url=f"sqlite:///{directory / 'bridge.db'}",
        rate_limit_per_minute=RATE_LIMIT,
    )
    with serve_app_in_thread(directory, settings) as server:
        yield server


@pytest.fixture(scope="module")
def limited_members(limited_bridge: BridgeServer) -> Iterator[sessionmaker[Session]]:
    engine = create_db_engine(limited_bridge.database_url)
    yield create_session_factory(engine)
    engine.dispose()


def issue_with_cli(server: BridgeServer, kind: str) -> dict[str, str]:
    """Create an organisation with `ledger-bridge org create --json` and return its output."""
    result = run_cli(
        server.environment,
        "org",
        "create",
        "--kind",
        kind,
        "--name",
        f"{kind} {uuid.uuid4()}",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert issued["token"] not in result.stderr
    return issued


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_credentials_never_logged_or_returned(
    bridge: BridgeServer,
    limited_bridge: BridgeServer,
    http: httpx.Client,
    bank: Member,
    admin: Member,
    read_targets: dict[str, str],
) -> None:
    issued = issue_with_cli(limited_bridge, "auditor")
    rotated = run_cli(
        limited_bridge.environment, "credential", "rotate", "--key-id", issued["key_id"], "--json"
    )
    assert rotated.returncode == 0, rotated.stderr
    rotated_token = json.loads(rotated.stdout)["token"]
    assert rotated_token not in rotated.stderr
    old_secret = issued["token"].partition(".")[2]
    wrong = f"{bank.credential.key_id}.{'x' * 43}"
    line = f"/v1/lines/{read_targets['line_id']}"
    requests = [
        (bridge, "GET", line, bearer(bank.credential.token), None),
        (bridge, "GET", line, bearer(wrong), None),
        # A client that forgets "Bearer " sends its token as the scheme.
        (bridge, "GET", line, {"Authorization": bank.credential.token}, None),
        (bridge, "GET", line, {"Authorization": f"Basic {bank.credential.token}"}, None),
        (bridge, "POST", f"{line}/drawdowns", bearer(bank.credential.token), {"amount": "-1"}),
        (bridge, "POST", f"{line}/drawdowns", bearer(bank.credential.token), "{not json"),
        (bridge, "GET", "/v1/organisations", bearer(bank.credential.token), None),
        (bridge, "GET", "/v1/nowhere", bearer(bank.credential.token), None),
        (limited_bridge, "GET", "/v1/regulator/rules", bearer(rotated_token), None),
        (limited_bridge, "GET", "/v1/regulator/rules", bearer(issued["token"]), None),
        (limited_bridge, "GET", f"/v1/operations/{uuid.uuid4()}", bearer(rotated_token), None),
    ]
    secrets = [bank.credential.secret, old_secret, rotated_token.partition(".")[2], "x" * 43]
    answered = []
    for server, method, path, headers, body in requests:
        content = body if isinstance(body, str) else None
        response = httpx.request(
            method,
            server.url + path,
            headers={**headers, "Idempotency-Key": f"log-{uuid.uuid4()}"},
            json=None if content is not None else body,
            content=content,
            timeout=30,
        )
        answered.append(response.status_code)
        exposed = response.text + json.dumps(dict(response.headers))
        for secret in secrets:
            assert secret not in exposed, f"{method} {path} returned a secret"

    assert set(answered) >= {200, 401, 403, 404, 422}, answered
    for server in (bridge, limited_bridge):
        lines = server.log_lines()
        access_lines = [line for line in lines if '"uvicorn.access"' in line]
        assert len(access_lines) >= 3, "the JSON access log was not captured"
        for line in lines:
            json.loads(line)
            for secret in secrets:
                assert secret not in line, f"a secret was logged: {line}"
            assert TOKEN_SHAPE.search(line) is None, f"a token was logged: {line}"


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter("%(message)s")])
def test_log_formatters_redact_tokens(formatter: logging.Formatter) -> None:
    token = "lbk_0123456789abcdef." + "S3cr3t-" * 6
    record = logging.makeLogRecord(
        {"msg": "request with %s", "args": (f"Authorization: Bearer {token}",), "levelno": 20}
    )
    record.header = token

    line = formatter.format(record)

    assert "S3cr3t-" not in line
    assert "lbk_0123456789abcdef" in line


# --- request size limits -----------------------------------------------------------------


def test_body_over_limit_rejected_with_length(
    http: httpx.Client,
    bank: Member,
    read_targets: dict[str, str],
    footprints: FootprintReader,
    session_factory: sessionmaker[Session],
) -> None:
    limit = Settings().max_request_bytes
    wait_until_quiet(session_factory)
    body = json.dumps({"amount": "1.00", "note": "x" * limit}).encode()
    before = footprints.read()

    response = http.post(
        f"/v1/lines/{read_targets['line_id']}/drawdowns",
        content=body,
        headers={
            **bank.headers,
            "Idempotency-Key": f"big-{uuid.uuid4()}",
            "Content-Type": "application/json",
        },
    )

    problem = assert_problem(response, 413)
    assert str(limit) in problem["detail"]
    assert footprints.read() == before


def test_chunked_body_over_limit_rejected(
    bridge: BridgeServer,
    bank: Member,
    read_targets: dict[str, str],
    footprints: FootprintReader,
    session_factory: sessionmaker[Session],
) -> None:
    limit = Settings().max_request_bytes
    wait_until_quiet(session_factory)

    def chunks() -> Iterator[bytes]:
        # 64 times the limit, in 1 KiB chunks, with no Content-Length to judge by.
        yield b'{"amount": "1.00", "note": "'
        for _ in range(limit // 1024 * 64):
            yield b"x" * 1024

    before = footprints.read()
    headers = {
        **bank.headers,
        "Idempotency-Key": f"chunked-{uuid.uuid4()}",
        "Content-Type": "application/json",
    }
    try:
        response = httpx.post(
            f"{bridge.url}/v1/lines/{read_targets['line_id']}/drawdowns",
            content=chunks(),
            headers=headers,
            timeout=30,
        )
    except httpx.TransportError:
        # The server sent 413 and closed the connection while the body was still arriving.
        response = None
    if response is not None:
        assert "content-length" not in response.request.headers
        problem = assert_problem(response, 413)
        assert str(limit) in problem["detail"]
    assert footprints.read() == before


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("max_request_bytes", 0),
        ("max_request_bytes", 10**9),
        ("rate_limit_per_minute", 0),
        ("rate_limit_per_minute", -5),
    ],
)
def test_limit_settings_validated(setting: str, value: int) -> None:
    with pytest.raises(ValidationError, match=setting):
        Settings(**{setting: value})


# --- rate limits -------------------------------------------------------------------------


def test_rate_limit_per_credential(
    limited_bridge: BridgeServer, limited_members: sessionmaker[Session]
) -> None:
    first = _create_member(limited_members, Role.REGULATOR).credential
    second = _create_member(limited_members, Role.REGULATOR).credential
    wrong_secret = bearer(f"{first.key_id}.{'y' * 43}")
    rules = f"{limited_bridge.url}/v1/regulator/rules"

    # Failed requests count too: half of the budget goes on a wrong secret.
    statuses = [httpx.get(rules, headers=wrong_secret).status_code for _ in range(2)]
    statuses += [
        httpx.get(rules, headers=bearer(first.token)).status_code for _ in range(RATE_LIMIT - 2)
    ]
    limited = httpx.get(rules, headers=bearer(first.token))
    other = httpx.get(rules, headers=bearer(second.token))
    health = [httpx.get(f"{limited_bridge.url}/health").status_code for _ in range(RATE_LIMIT + 2)]

    assert 429 not in statuses
    problem = assert_problem(limited, 429)
    assert str(RATE_LIMIT) in problem["detail"]
    assert int(limited.headers["Retry-After"]) >= 1
    assert other.status_code != 429, "credentials share a budget"
    assert health == [200] * (RATE_LIMIT + 2)


# --- secrets in the repository -----------------------------------------------------------

# Anvil's funded development accounts, derived from its public mnemonic. Their keys are
# published, so they may appear in tests and docs. No other key may.
ANVIL_ADDRESSES = frozenset(
    {
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
        "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
        "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
        "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
        "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
        "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
        "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
        "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    }
)
HEX_64 = re.compile(r"(?<![0-9A-Za-z])(?:0x)?([0-9a-fA-F]{64})(?![0-9A-Za-z])")
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def tracked_text_files() -> Iterator[tuple[Path, str]]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPOSITORY, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        path = REPOSITORY / name
        if not path.is_file():
            continue
        try:
            yield path, path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue


def test_anvil_addresses_match_development_keys() -> None:
    assert len(ANVIL_ADDRESSES) == DEVELOPMENT_ACCOUNT_COUNT
    derived = {Account.from_key(key).address for key in development_private_keys()}
    assert derived == ANVIL_ADDRESSES


def test_repository_holds_no_secrets() -> None:
    findings = []
    scanned = 0
    for path, text in tracked_text_files():
        scanned += 1
        name = path.relative_to(REPOSITORY)
        for match in HEX_64.finditer(text):
            address = Account.from_key(bytes.fromhex(match.group(1))).address
            if address not in ANVIL_ADDRESSES:
                findings.append(f"{name}: 32-byte hex {match.group(0)[:10]}... (private-key shape)")
        if PEM_PRIVATE_KEY.search(text):
            findings.append(f"{name}: PEM private key block")
        for match in TOKEN_SHAPE.finditer(text):
            findings.append(f"{name}: bridge credential {match.group(0)[:21]}...")

    assert scanned > 100, "git ls-files listed too few files"
    assert findings == [], (
        "Remove these secrets, or build test values at run time (such as '0x' + 'ab' * 32):\n"
        + "\n".join(findings)
    )


def test_secret_scan_detects_planted_key() -> None:
    planted = "LEDGER_SIGNER_OPERATOR_KEY=0x" + "5a" * 32
    assert HEX_64.search(planted) is not None
    # Built at run time, so this file does not hold the marker the scan looks for.
    dashes = "-" * 5
    assert PEM_PRIVATE_KEY.search(f"{dashes}BEGIN EC PRIVATE KEY{dashes}") is not None
    assert TOKEN_SHAPE.search("lbk_0123456789abcdef." + "Q" * 43) is not None


def test_roles_table_matches_role_enum() -> None:
    assert {role.value for role in Role} == ANYONE
