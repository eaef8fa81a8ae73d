"""The `ledger-bridge scenario run` command's checks that run before any replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger_bridge.cli import main
from ledger_bridge.scenarios.cli import read_credentials
from ledger_bridge.scenarios.errors import ScenarioError

REPOSITORY = Path(__file__).resolve().parents[2]
SCENARIO = REPOSITORY / "scenarios" / "misuse-attempt.yaml"


def test_attach_options_must_come_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.json"

    status = main(
        [
            "scenario",
            "run",
            str(SCENARIO),
            "--report",
            str(report),
            "--rpc-url",
            "http://127.0.0.1:8545",
        ]
    )

    assert status == 1
    assert "--api-url, --credentials missing" in capsys.readouterr().err
    assert not report.exists()


def test_invalid_file_is_reported_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "broken.yaml"
    scenario.write_text("organisations: {bank: {name: b}}\nlines: []\nactions: []\n")

    status = main(["scenario", "run", str(scenario), "--report", str(tmp_path / "r.json")])

    error = capsys.readouterr().err
    assert status == 1
    assert "lines: List should have at least 1 item" in error
    assert "actions: List should have at least 1 item" in error


def test_credentials_file_reads_exported_tokens(tmp_path: Path) -> None:
    path = tmp_path / "credentials.env"
    path.write_text(
        "export BANK_CREDENTIAL=bank.secret\nAUDITOR_CREDENTIAL='auditor.secret'\n"
        "# comment\nexport REGULATOR_CREDENTIAL=regulator.secret\nexport PAYEE=0xabc\n"
    )

    credentials = read_credentials(path)

    assert credentials.bank == "bank.secret"
    assert credentials.auditor == "auditor.secret"
    assert credentials.regulator == "regulator.secret"


def test_credentials_file_without_regulator_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "credentials.env"
    path.write_text("BANK_CREDENTIAL=b\nAUDITOR_CREDENTIAL=a\n")

    with pytest.raises(ScenarioError, match="has no REGULATOR_CREDENTIAL"):
        read_credentials(path)
