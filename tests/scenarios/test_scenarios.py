"""Replay of every scenario file through the bridge, checked against the acceptance figures.

One Anvil, one deployment and one bridge serve the whole module. A chain's
time only moves forward, so the files under scenarios/ are replayed together
on one timeline, each with lines of its own. Each file's report must show no
failed expectation, and the figures of the acceptance cases to the fen,
which this module lists again on its own so that a change to a scenario
file cannot change what is checked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from ledger_bridge.cli import main
from ledger_bridge.scenarios.cli import genesis_for
from ledger_bridge.scenarios.client import BridgeClient
from ledger_bridge.scenarios.clock import ChainClock
from ledger_bridge.scenarios.loading import load_scenario
from ledger_bridge.scenarios.runner import Replay
from ledger_bridge.scenarios.stack import Endpoints, LocalStack, find_project_dir

REPOSITORY = Path(__file__).resolve().parents[2]
SCENARIO_FILES = sorted((REPOSITORY / "scenarios").glob("*.yaml"))
COVERAGE_FILE = Path(__file__).parent / "data" / "format-coverage.yaml"

A_SETTLEMENTS = [
    ("2027-01-21", "4833.33"),
    ("2027-02-21", "14197.92"),
    ("2027-03-21", "21750.00"),
    ("2027-04-21", "32927.08"),
    ("2027-05-21", "41083.33"),
    ("2027-06-21", "51656.25"),
    ("2027-07-21", "59208.33"),
    ("2027-08-21", "70385.42"),
    ("2027-09-21", "79750.00"),
    ("2027-10-21", "86395.83"),
    ("2027-11-21", "98479.17"),
    ("2027-12-21", "104520.83"),
]

# The acceptance figures by scenario: per line, report fields that must equal these values,
# and checks (moment, check) that must have passed with the expected value given.
README_FIGURES: Mapping[str, Mapping[str, Any]] = {
    "staged-drawdowns": {
        "lines": {
            "staged": {
                "settlements": [{"date": day, "amount": amount} for day, amount in A_SETTLEMENTS],
                "payoffs": [{"date": "2027-12-28", "amount": "30025375.00"}],
                "interest_paid": "690562.49",
                "principal": "0.00",
                "payoff_amount": "0.00",
            },
            "at-once": {"interest_paid": "1294125.00", "principal": "0.00"},
        },
        "checks": [
            ("end", "interest saved by line staged against line at-once", "603562.51"),
        ],
    },
    "limit-adjustments": {
        "lines": {"rd-line": {"principal": "5600000.00", "limit": "5709600.00"}},
        "checks": [
            ("2027-02-01 10:00", "principal of line rd-line", "4000000.00"),
            ("2027-04-01 10:00", "limit of line rd-line", "6100000.00"),
            (
                "2027-04-15 10:00",
                "fails with CreditLimitChangeTooSoon",
                "CreditLimitChangeTooSoon(lastChangeDay=2027-04-01, nextAllowedDay=2027-06-30)",
            ),
            (
                "2027-07-01 10:00",
                "fails with CreditLimitChangeTooLarge",
                "CreditLimitChangeTooLarge(currentLimit=6100000.00, requestedLimit=7930000.00, "
                "maxChangeBps=2200)",
            ),
            ("2027-07-01 10:30", "limit of line rd-line", "7320000.00"),
            ("2027-07-02 10:00", "principal of line rd-line", "6000000.00"),
            ("2027-10-01 10:00", "limit of line rd-line", "5709600.00"),
            ("2027-10-01 10:00", "principal of line rd-line", "6000000.00"),
            (
                "2027-10-01 10:10",
                "fails with CreditLimitExceeded",
                "CreditLimitExceeded(available=0.00, requested=1.00)",
            ),
            ("2027-10-01 10:20", "principal of line rd-line", "5500000.00"),
            ("2027-10-01 10:30", "principal of line rd-line", "5600000.00"),
        ],
    },
    "renewal": {
        "lines": {
            "fleet": {
                "payoffs": [{"date": "2028-01-06", "amount": "7512833.33"}],
                "interest_paid": "260612.47",
                "principal": "0.00",
            }
        },
        "settled": {"fleet": {"2027-07-21": "19727.08", "2027-08-21": "24864.58"}},
        "checks": [
            ("2027-06-24 10:00", "line fleet listed as maturing within 15 days", "listed"),
            ("2027-06-25 10:00", "principal of line fleet", "6000000.00"),
            ("2027-07-20 10:00", "drawdown confirmed", "confirmed"),
        ],
    },
    "renewal-missed": {
        "lines": {
            "fleet": {
                "payoffs": [{"date": "2027-07-29", "amount": "6007900.00"}],
                "interest_paid": "136604.15",
                "principal": "0.00",
            }
        },
        "settled": {"fleet": {"2027-07-21": "23370.83"}},
        "checks": [
            (
                "2027-07-12 10:00",
                "fails with CreditLinePastMaturity",
                "CreditLinePastMaturity(maturityDay=2027-07-09, today=2027-07-12)",
            ),
        ],
    },
    "cluster-pool": {
        "lines": {
            "mill-1": {"principal": "8000000.00"},
            "mill-2": {"principal": "4000000.00"},
            "mill-3": {"principal": "6000000.00"},
            "mill-4": {"principal": "8000000.00"},
        },
        "checks": [
            ("2027-03-02 10:00", "available of line mill-3", "0.00"),
            (
                "2027-03-02 10:30",
                "fails with CreditPoolLimitExceeded",
                "CreditPoolLimitExceeded(poolRoom=0.00, requested=1.00)",
            ),
            ("2027-03-02 10:30", "limit of line mill-4", "8000000.00"),
            ("2027-03-10 10:00", "principal of line mill-2", "4000000.00"),
            ("2027-03-10 10:30", "principal of line mill-4", "3000000.00"),
            ("2027-03-15 10:00", "principal of line mill-3", "5000000.00"),
            ("2027-03-15 10:30", "principal of line mill-4", "8000000.00"),
            ("2027-03-15 10:30", "available of line mill-2", "0.00"),
            ("2027-03-15 11:00", "principal of line mill-3", "6000000.00"),
        ],
    },
    "misuse-attempt": {
        "lines": {"workshop": {"principal": "300000.00", "locked": "0.00"}},
        "fund_flow": {
            "compliant": True,
            "refused": [
                {"payee": "crypto-exchange", "category": 901, "rule": "FundFlowCategoryBlocked"}
            ],
            "paid_by_payee": {"steel-supplier": "180000.00", "machine-maker": "120000.00"},
            "returned": "200000.00",
            "locked": "0.00",
        },
    },
}


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    """A fresh Anvil, deployment and bridge whose chain starts the day before the first case."""
    scenarios = [load_scenario(path) for path in SCENARIO_FILES]
    stack = LocalStack(
        project_dir=find_project_dir(REPOSITORY),
        run_dir=tmp_path_factory.mktemp("scenario-stack"),
        genesis=genesis_for(scenarios),
        bank_name="scenario-bank",
    )
    with stack as running:
        yield running


@pytest.fixture(scope="module")
def reports(endpoints: Endpoints) -> dict[str, dict[str, Any]]:
    """Every scenario file replayed on one timeline; reports by scenario name."""
    scenarios = [load_scenario(path) for path in SCENARIO_FILES]
    clock = ChainClock(endpoints.rpc_url)
    client = BridgeClient(endpoints.api_url, endpoints.credentials, mine_block=clock.mine)
    try:
        replayed = Replay(scenarios, client, clock).run()
    finally:
        client.close()
        clock.close()
    return {report["scenario"]: report for report in replayed}


def test_every_acceptance_case_has_a_file() -> None:
    assert {path.stem for path in SCENARIO_FILES} == set(README_FIGURES)


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda path: path.stem)
def test_scenario_replay_meets_expectations(
    reports: Mapping[str, dict[str, Any]], path: Path
) -> None:
    report = reports[path.stem]
    failed = [item for item in report["expectations"]["details"] if not item["passed"]]

    assert failed == [], json.dumps(failed, indent=1)
    assert report["expectations"]["failed"] == 0
    assert report["expectations"]["passed"] > 0
    assert report["operations"]["rejected"] == 0


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda path: path.stem)
def test_scenario_report_has_readme_figures(
    reports: Mapping[str, dict[str, Any]], path: Path
) -> None:
    report = reports[path.stem]
    figures = README_FIGURES[path.stem]

    for label, fields in figures.get("lines", {}).items():
        line = report["lines"][label]
        for field, expected in fields.items():
            assert line[field] == expected, f"{field} of line {label}"
    for label, settled in figures.get("settled", {}).items():
        listed = {item["date"]: item["amount"] for item in report["lines"][label]["settlements"]}
        for day, amount in settled.items():
            assert listed.get(day) == amount, f"interest settled on {day} by line {label}"
    for moment, check, expected in figures.get("checks", []):
        assert _passed_check(report, moment, check) == expected, f"{check} at {moment}"
    for field, expected in figures.get("fund_flow", {}).items():
        actual = report["fund_flow"][field]
        if field == "refused":
            actual = [{key: item[key] for key in ("payee", "category", "rule")} for item in actual]
        assert actual == expected, f"fund_flow.{field}"


def test_report_lists_settlements_in_chain_order(reports: Mapping[str, dict[str, Any]]) -> None:
    settlements = reports["staged-drawdowns"]["lines"]["staged"]["settlements"]

    assert [item["date"] for item in settlements] == [day for day, _ in A_SETTLEMENTS]


def test_cli_replays_against_running_system(
    reports: Mapping[str, dict[str, Any]], endpoints: Endpoints, tmp_path: Path
) -> None:
    credentials = _write_credentials(endpoints, tmp_path)
    report_path = tmp_path / "reports" / "coverage.json"

    status = main(
        [
            "scenario",
            "run",
            str(COVERAGE_FILE),
            "--report",
            str(report_path),
            "--rpc-url",
            endpoints.rpc_url,
            "--api-url",
            endpoints.api_url,
            "--credentials",
            str(credentials),
        ]
    )

    report = json.loads(report_path.read_text())
    failed = [item for item in report["expectations"]["details"] if not item["passed"]]
    assert failed == [], json.dumps(failed, indent=1)
    assert status == 0
    assert report["lines"]["spare-line"]["payoffs"] == [
        {"date": "2028-02-09", "amount": "60068.89"}
    ]


def test_cli_rejects_chain_already_past_scenario(
    reports: Mapping[str, dict[str, Any]],
    endpoints: Endpoints,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    credentials = _write_credentials(endpoints, tmp_path)

    status = main(
        [
            "scenario",
            "run",
            str(SCENARIO_FILES[0]),
            "--report",
            str(tmp_path / "r.json"),
            "--rpc-url",
            endpoints.rpc_url,
            "--api-url",
            endpoints.api_url,
            "--credentials",
            str(credentials),
        ]
    )

    assert status == 1
    assert "chain time cannot move back" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def _passed_check(report: Mapping[str, Any], moment: str, check: str) -> str | None:
    """Return the expected value of a passed check at `moment`, or None if none passed."""
    for item in report["expectations"]["details"]:
        at = item["step"] if moment == "end" else item["moment"]
        if at == moment and item["check"] == check and item["passed"]:
            return item["expected"]
    return None


def _write_credentials(endpoints: Endpoints, folder: Path) -> Path:
    path = folder / "credentials.env"
    tokens = endpoints.credentials
    path.write_text(
        f"export BANK_CREDENTIAL={tokens.bank}\n"
        f"export AUDITOR_CREDENTIAL={tokens.auditor}\n"
        f"export REGULATOR_CREDENTIAL={tokens.regulator}\n"
    )
    return path
