"""The ledger-bridge command line: schema upgrades, organisations, credentials, serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from ledger_bridge.app import create_app
from ledger_bridge.cli import main
from ledger_bridge.core.config import Settings, get_settings

from .support import FACILITY_A

BACKEND_DIR = Path(__file__).resolve().parents[2] / "backend"


@pytest.fixture
def cli_environment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    environment = {
        "LEDGER_ENVIRONMENT": "development",
        "LEDGER_DATABASE_URL": database_url,
        "LEDGER_DEPLOYMENT_FILE": str(tmp_path / "deployment.json"),
        "LEDGER_CHAIN_ID": "31337",
        "LEDGER_LOG_FORMAT": "text",
        # The CLI tests run without a node; tests/integration runs the bridge with a chain.
        "LEDGER_CHAIN_ENABLED": "false",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield environment
    get_settings.cache_clear()


@pytest.fixture
def api(cli_environment: dict[str, str]) -> Iterator[TestClient]:
    """The app on the database the command line writes to."""
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as test_client:
        yield test_client


def run(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    status = main(list(arguments))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def create_admin(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    status, out, _ = run(capsys, "org", "create", "--name", "Ops", "--kind", "admin", "--json")
    assert status == 0
    return json.loads(out)


def test_db_upgrade(cli_environment: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "db", "upgrade")

    assert status == 0
    assert "up to date" in out


def test_org_create_prints_credential_once(
    api: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(
        capsys,
        "org",
        "create",
        "--name",
        "Bank A",
        "--kind",
        "bank",
        "--facility",
        FACILITY_A.lower(),
    )

    assert status == 0
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert lines["kind"] == "bank"
    assert lines["facility_address"] == FACILITY_A
    token = lines["token"]
    assert out.count(token) == 1
    assert "shown only now" in err
    assert api.get("/v1/organisations", headers=bearer(token)).status_code == 403


def test_org_create_json(api: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    created = create_admin(capsys)

    assert created["kind"] == "admin"
    assert created["token"].startswith(created["key_id"] + ".")
    assert api.get("/v1/organisations", headers=bearer(created["token"])).status_code == 200


def test_credential_rotate(api: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    created = create_admin(capsys)

    status, out, _ = run(capsys, "credential", "rotate", "--key-id", created["key_id"], "--json")

    assert status == 0
    rotated = json.loads(out)
    assert rotated["key_id"] == created["key_id"]
    assert api.get("/v1/organisations", headers=bearer(created["token"])).status_code == 401
    assert api.get("/v1/organisations", headers=bearer(rotated["token"])).status_code == 200


def test_credential_revoke(api: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    created = create_admin(capsys)

    status, out, _ = run(capsys, "credential", "revoke", "--key-id", created["key_id"])

    assert status == 0
    assert f"Credential {created['key_id']} is revoked" in out
    assert api.get("/v1/organisations", headers=bearer(created["token"])).status_code == 401


def test_credential_issue(api: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    created = create_admin(capsys)

    status, out, _ = run(
        capsys, "credential", "issue", "--org-id", created["organisation_id"], "--json"
    )

    assert status == 0
    issued = json.loads(out)
    assert issued["key_id"] != created["key_id"]
    assert api.get("/v1/organisations", headers=bearer(issued["token"])).status_code == 200


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["org", "create", "--name", "Bank", "--kind", "bank"], "required for a bank"),
        (["org", "create", "--name", "B", "--kind", "bank", "--facility", "0x12"], "hex digits"),
        (["credential", "rotate", "--key-id", "lbk_0000000000000000"], "No credential"),
        (["credential", "revoke", "--key-id", "lbk_0000000000000000"], "No credential"),
    ],
    ids=["bank-without-facility", "bad-facility", "rotate-unknown", "revoke-unknown"],
)
def test_command_errors_exit_1(
    cli_environment: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    status, out, err = run(capsys, *arguments)

    assert status == 1
    assert out == ""
    assert err.startswith("error: ")
    assert message in err


def test_invalid_settings_exit_1(
    cli_environment: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEDGER_ENVIRONMENT", "production")
    monkeypatch.setenv("LEDGER_DATABASE_URL", "sqlite:///./ledger-bridge.db")
    get_settings.cache_clear()

    status, _, err = run(capsys, "db", "upgrade")

    assert status == 1
    assert "LEDGER_DATABASE_URL" in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["org", "create", "--name", "X"])

    assert caught.value.code == 2
    assert "--kind" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_health(cli_environment: dict[str, str]) -> None:
    port = _free_port()
    environment = {
        **os.environ,
        **cli_environment,
        "LEDGER_LOG_FORMAT": "json",
        "PYTHONPATH": str(BACKEND_DIR),
    }
    command = [sys.executable, "-m", "ledger_bridge.cli", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        response = _wait_for_health(f"http://127.0.0.1:{port}/health", server)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()

    assert response.json() == {"status": "ok"}, output
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [record["message"] for record in records]
    assert any(message.startswith("Bridge ready") for message in messages), output
    assert all({"time", "level", "logger"} <= record.keys() for record in records)


def _wait_for_health(url: str, server: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"the server did not answer {url} within 60 seconds")
