"""`ledger-bridge scenario run FILE --report REPORT`: replay a scenario and write its report.

Without --rpc-url, --api-url and --credentials the command starts a fresh
Anvil, deploys the contracts and starts a bridge for the run, and stops them
afterwards. With all three it replays against a running system, which must
be a development chain whose time it can move forward.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ledger_bridge.core.config import Settings
from ledger_bridge.scenarios.client import BridgeClient, Credentials
from ledger_bridge.scenarios.clock import ChainClock
from ledger_bridge.scenarios.errors import ScenarioError
from ledger_bridge.scenarios.loading import load_scenario
from ledger_bridge.scenarios.model import CHINA_STANDARD_TIME, Scenario
from ledger_bridge.scenarios.runner import Replay
from ledger_bridge.scenarios.stack import Endpoints, LocalStack, find_project_dir
from ledger_bridge.scenarios.timeline import build_timeline

CREDENTIAL_VARIABLES = {
    "bank": "BANK_CREDENTIAL",
    "auditor": "AUDITOR_CREDENTIAL",
    "regulator": "REGULATOR_CREDENTIAL",
}


def add_scenario_command(commands: argparse._SubParsersAction) -> None:
    """Add `scenario run` to the `ledger-bridge` command line."""
    scenario = commands.add_parser("scenario", help="replay scenario files through the bridge")
    actions = scenario.add_subparsers(required=True, metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="replay one scenario file and write its report",
        description=(
            "Replay a scenario file through the bridge's HTTP API on a local chain whose time "
            "moves to each step, and write a JSON report. Without --rpc-url, --api-url and "
            "--credentials a fresh Anvil, deployment and bridge are started and stopped."
        ),
    )

    run.add_argument("file", type=Path, metavar="FILE", help="scenario YAML file")
    run.add_argument(
        "--report",
        required=True,
        type=Path,
        metavar="REPORT",
        help="where to write the JSON report",
    )

    run.add_argument("--rpc-url", help="JSON-RPC URL of a running development chain (Anvil)")
    run.add_argument("--api-url", help="base URL of a running bridge on that chain")
    run.add_argument(
        "--credentials",
        type=Path,
        help=(
            "file with BANK_CREDENTIAL, AUDITOR_CREDENTIAL and REGULATOR_CREDENTIAL lines, "
            "such as the .run/credentials.env that `make up` writes"
        ),
    )

    run.add_argument(
        "--run-dir",
        type=Path,
        help="folder for the fresh system's logs, database and deployment file (kept); "
        "by default a temporary folder, removed after a run without failures",
    )
    run.add_argument("--verbose", action="store_true", help="log each operation as it ends")
    run.set_defaults(command=run_scenario_command)


def run_scenario_command(arguments: argparse.Namespace, settings: Settings) -> int:
    """Replay the file, write the report, and return 0 when every expectation passed."""
    logging.basicConfig(
        level=logging.INFO if arguments.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # httpx logs every request at INFO, which would bury the runner's one line per operation.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    scenario = load_scenario(arguments.file)
    attached = _attached_endpoints(arguments)
    if attached is not None:
        report = replay_scenarios([scenario], attached)[0]
    else:
        report = _replay_on_fresh_system(scenario, arguments.run_dir)
    write_report(arguments.report, report)
    print(summarise(report, arguments.report))
    return 1 if report["expectations"]["failed"] else 0


def _replay_on_fresh_system(scenario: Scenario, run_dir: Path | None) -> dict[str, Any]:
    """Replay on a fresh system; keep its folder if asked for, or if anything failed."""
    folder = run_dir or Path(tempfile.mkdtemp(prefix="ledger-scenario-"))
    failed = True
    try:
        report = replay_scenarios([scenario], None, folder)[0]
        failed = report["expectations"]["failed"] > 0
        return report
    finally:
        if run_dir is None and not failed:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"Logs of the local system are in {folder}", file=sys.stderr)


def replay_scenarios(
    scenarios: Sequence[Scenario], endpoints: Endpoints | None, run_dir: Path | None = None
) -> list[dict[str, Any]]:
    """Replay scenarios on one timeline, on a fresh local system unless `endpoints` is given.

    A fresh system keeps its logs, database and deployment file in `run_dir`.
    """
    with ExitStack() as stack:
        if endpoints is None:
            if run_dir is None:
                raise ValueError("replay_scenarios needs run_dir to start a fresh system")
            local = LocalStack(
                project_dir=find_project_dir(),
                run_dir=run_dir,
                genesis=genesis_for(scenarios),
                bank_name=scenarios[0].organisations.bank.name,
                facility_name=scenarios[0].organisations.bank.facility,
            )
            endpoints = stack.enter_context(local)
        clock = ChainClock(endpoints.rpc_url)
        stack.callback(clock.close)
        client = BridgeClient(endpoints.api_url, endpoints.credentials, mine_block=clock.mine)
        stack.callback(client.close)
        return Replay(scenarios, client, clock).run()


def genesis_for(scenarios: Sequence[Scenario]) -> dt.datetime:
    """Return midnight CST of the day before the first step, for a fresh chain's genesis block."""
    first = build_timeline(scenarios)[0].moment.astimezone(CHINA_STANDARD_TIME)
    return dt.datetime.combine(first.date() - dt.timedelta(days=1), dt.time(), CHINA_STANDARD_TIME)


def write_report(path: Path, report: Mapping[str, Any]) -> None:
    """Write the report as indented JSON, creating the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def summarise(report: Mapping[str, Any], path: Path) -> str:
    """Return one line: the scenario, its expectations and where the report is."""
    expectations = report["expectations"]
    return (
        f"Scenario {report['scenario']}: {expectations['passed']} expectations passed, "
        f"{expectations['failed']} failed, in {report['run']['seconds']} s of replay. "
        f"Report: {path}"
    )


def _attached_endpoints(arguments: argparse.Namespace) -> Endpoints | None:
    options = {
        "--rpc-url": arguments.rpc_url,
        "--api-url": arguments.api_url,
        "--credentials": arguments.credentials,
    }
    if all(value is None for value in options.values()):
        return None
    missing = [name for name, value in options.items() if value is None]
    if missing:
        raise ScenarioError(
            f"{', '.join(missing)} missing: a replay against a running system needs "
            "--rpc-url, --api-url and --credentials together. Leave all three out to "
            "start a fresh local system."
        )
    return Endpoints(
        rpc_url=arguments.rpc_url,
        api_url=arguments.api_url,
        credentials=read_credentials(arguments.credentials),
    )


def read_credentials(path: Path) -> Credentials:
    """Read bearer tokens from `NAME=value` lines, optionally prefixed with `export`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ScenarioError(f"Credentials file {path} cannot be read: {error.strerror}") from error
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, separator, value = line.strip().removeprefix("export ").partition("=")
        if separator:
            values[name.strip()] = value.strip().strip("'\"")
    missing = [name for name in CREDENTIAL_VARIABLES.values() if not values.get(name)]
    if missing:
        raise ScenarioError(
            f"Credentials file {path} has no {', '.join(missing)}. Write one NAME=token line "
            "for each of BANK_CREDENTIAL, AUDITOR_CREDENTIAL and REGULATOR_CREDENTIAL."
        )
    return Credentials(**{role: values[name] for role, name in CREDENTIAL_VARIABLES.items()})
