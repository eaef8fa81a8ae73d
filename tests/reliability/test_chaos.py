"""The short chaos run: about 300 writes with a bridge kill, an Anvil restart and a reorg.

The run is `python -m reliability.chaos` in a subprocess, on a fresh Anvil
node, a SQLite file and a real `ledger-bridge serve` process. Its seed is
printed, so a failure can be replayed with `--seed`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
# The run reserves time for draining and reconciling inside this limit, so it ends by itself.
SHORT_RUN_DEADLINE_SECONDS = 85
SHORT_RUN_OPERATIONS = 300


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, int]:
    report_dir = tmp_path_factory.mktemp("chaos-report")
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY / "backend"), str(REPOSITORY)]),
        "LEDGER_RELIABILITY_REPORT_DIR": str(report_dir),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.chaos",
            "--operations",
            str(SHORT_RUN_OPERATIONS),
            "--deadline",
            str(SHORT_RUN_DEADLINE_SECONDS),
            "--backlog",
            "16",
            "--sqlite",
        ],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SHORT_RUN_DEADLINE_SECONDS + 30,
        check=False,
    )
    print(result.stdout)
    print(result.stderr[-4000:])
    report_file = report_dir / "chaos.json"
    assert report_file.exists(), f"the run wrote no report:\n{result.stdout}\n{result.stderr}"
    report = json.loads(report_file.read_text())
    report["exit_status"] = result.returncode
    return report


def test_short_run_exit_status(short_run: dict[str, int]) -> None:
    assert short_run["exit_status"] == 0


@pytest.mark.parametrize(
    "key",
    [
        "lost",
        "duplicated",
        "server_errors",
        "nonce_errors",
        "index_mismatches",
        "unfinished",
        "rejected_stored",
    ],
)
def test_short_run_counts_zero(short_run: dict[str, int], key: str) -> None:
    assert short_run[key] == 0


@pytest.mark.parametrize("key", ["bridge_kills", "anvil_restarts", "reorgs"])
def test_short_run_fault_injected(short_run: dict[str, int], key: str) -> None:
    assert short_run[key] >= 1


def test_short_run_confirms_writes(short_run: dict[str, int]) -> None:
    assert short_run["confirmed"] > 0
    assert short_run["accepted"] == short_run["confirmed"] + short_run["failed"]


def test_short_run_rejects_invalid(short_run: dict[str, int]) -> None:
    assert short_run["rejected"] > 0
