"""A fresh local system for one replay: Anvil, the deployed contracts and a bridge.

`LocalStack` starts Anvil on a free 127.0.0.1 port with its genesis block
at a given time, and deploys the contracts with the project's Ape script.
It then creates a bank, an auditor and a regulator organisation in a new
SQLite database and runs `ledger-bridge serve` on another free port. `stop`
ends both processes by their process ids. Each is started in a session of its
own, so that stopping its process group also stops the native Anvil that
the npm launcher spawns.

The bridge signs with Anvil's public development keys, which the bridge
accepts only in its development environment.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

import ledger_bridge
from ledger_bridge.core.security import Role
from ledger_bridge.scenarios.client import Credentials
from ledger_bridge.scenarios.errors import StackError
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head
from ledger_bridge.storage.organisations import create_organisation

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
NODE_START_SECONDS = 30.0
DEPLOY_SECONDS = 600.0
BRIDGE_START_SECONDS = 60.0
STOP_SECONDS = 10.0
# Poll intervals of the bridge's worker and indexer, in milliseconds. The worker's sets how soon
# a mined transaction's operation is confirmed. The indexer matters only when history is read,
# and polls less often because each idle poll costs the bridge CPU time.
WORKER_POLL_INTERVAL_MS = "20"
INDEXER_POLL_INTERVAL_MS = "50"
APE_NETWORK = "ethereum:local:foundry"


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Addresses of a running system, and the credentials to use it."""

    rpc_url: str
    api_url: str
    credentials: Credentials
    facility_address: str | None = None


def find_project_dir(start: Path | None = None) -> Path:
    """Return the Ape project holding the contracts: the nearest folder with ape-config.yaml.

    Looks upwards from `start` (the working directory by default), then from
    the installed package, which an editable install keeps in the repository.
    """
    package_dir = Path(ledger_bridge.__file__).resolve().parent
    for origin in (start or Path.cwd(), package_dir):
        for folder in (origin, *origin.parents):
            if (folder / "ape-config.yaml").is_file():
                return folder
    raise StackError(
        "No ape-config.yaml was found above the working directory or the ledger_bridge "
        "package, so the contracts cannot be deployed. Run from the repository, or pass "
        "--rpc-url, --api-url and --credentials to replay against a running system."
    )


class LocalStack:
    """Anvil, the deployment and a bridge, started for one run and stopped afterwards."""

    def __init__(
        self,
        *,
        project_dir: Path,
        run_dir: Path,
        genesis: dt.datetime,
        bank_name: str,
        facility_name: str | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.run_dir = run_dir
        self.genesis = genesis
        self.bank_name = bank_name
        self.facility_name = facility_name
        self._processes: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def __enter__(self) -> Endpoints:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> Endpoints:
        """Start Anvil, deploy, create the organisations and start the bridge."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        rpc_url = self._start_anvil()
        deployment_file = self._deploy(rpc_url)
        database_url = f"sqlite:///{self.run_dir / 'bridge.db'}"
        facility, credentials = self._create_organisations(deployment_file, database_url)
        api_url = self._start_bridge(rpc_url, deployment_file, database_url)
        return Endpoints(rpc_url, api_url, credentials, facility)

    def stop(self) -> None:
        """Stop the processes this stack started, newest first, by their process group ids."""
        for process in reversed(self._processes):
            _stop_process_group(process)
        self._processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    # -------------------------------------------------------------------------------------
    # Steps
    # -------------------------------------------------------------------------------------

    def _start_anvil(self) -> str:
        anvil = self._tool("anvil")
        port = _free_port()
        command = [
            str(anvil),
            "--host",
            HOST,
            "--port",
            str(port),
            "--timestamp",
            str(int(self.genesis.timestamp())),
            "--silent",
        ]
        process = self._spawn(command, "anvil.log", os.environ)
        url = f"http://{HOST}:{port}"
        _wait_until(
            lambda: _answers_rpc(url), process, NODE_START_SECONDS, "Anvil", self._log("anvil.log")
        )
        logger.info("Anvil (pid %s) is running at %s", process.pid, url)
        return url

    def _deploy(self, rpc_url: str) -> Path:
        deployment_file = self.run_dir / "deployment.json"
        environment = {
            **self._tool_environment(),
            "APE_FOUNDRY_HOST": rpc_url,
            "LEDGER_DEPLOYMENT_FILE": str(deployment_file),
        }
        ape = Path(sys.executable).parent / "ape"
        command = [str(ape if ape.exists() else "ape"), "run", "deploy", "--network", APE_NETWORK]
        log_path = self.run_dir / "deploy.log"
        with log_path.open("wb") as log:
            try:
                result = subprocess.run(
                    command,
                    cwd=self.project_dir,
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=DEPLOY_SECONDS,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as error:
                raise StackError(f"`ape run deploy` could not run: {error}") from error
        if result.returncode != 0:
            raise StackError(
                f"`ape run deploy` exited with status {result.returncode}:\n"
                f"{_tail(log_path)}\nRun `make compile` first if the contracts are not built."
            )
        return deployment_file

    def _create_organisations(
        self, deployment_file: Path, database_url: str
    ) -> tuple[str, Credentials]:
        facility = self._facility_address(json.loads(deployment_file.read_text()))
        upgrade_to_head(database_url)
        engine = create_db_engine(database_url)
        try:
            sessions = create_session_factory(engine)
            tokens = {}
            for kind, name, address in (
                (Role.BANK, self.bank_name, facility),
                (Role.AUDITOR, f"{self.bank_name} auditor", None),
                (Role.REGULATOR, f"{self.bank_name} regulator", None),
            ):
                with sessions() as session:
                    created = create_organisation(
                        session, name=name, kind=kind, facility_address=address
                    )
                    tokens[kind] = created.credential.token
        finally:
            engine.dispose()
        credentials = Credentials(
            bank=tokens[Role.BANK], auditor=tokens[Role.AUDITOR], regulator=tokens[Role.REGULATOR]
        )
        return facility, credentials

    def _facility_address(self, deployment: Mapping[str, Any]) -> str:
        """Return the address of the facility named `facility_name`, or of the first one."""
        facilities = deployment["facilities"]
        if self.facility_name is None:
            return facilities[0]["address"]
        for facility in facilities:
            if facility["name"] == self.facility_name:
                return facility["address"]
        names = ", ".join(facility["name"] for facility in facilities)
        raise StackError(
            f"The deployment has no facility named {self.facility_name!r}; it has {names}. "
            "Set organisations.bank.facility to one of them, or leave it out."
        )

    def _start_bridge(self, rpc_url: str, deployment_file: Path, database_url: str) -> str:
        port = _free_port()
        environment = {
            **self._tool_environment(),
            "LEDGER_ENVIRONMENT": "development",
            "LEDGER_RPC_URL": rpc_url,
            "LEDGER_DEPLOYMENT_FILE": str(deployment_file),
            "LEDGER_DATABASE_URL": database_url,
            "LEDGER_WORKER_POLL_INTERVAL_MS": WORKER_POLL_INTERVAL_MS,
            "LEDGER_INDEXER_POLL_INTERVAL_MS": INDEXER_POLL_INTERVAL_MS,
            "LEDGER_LOG_FORMAT": "text",
        }
        command = [
            sys.executable,
            "-m",
            "ledger_bridge.cli",
            "serve",
            "--host",
            HOST,
            "--port",
            str(port),
        ]
        process = self._spawn(command, "bridge.log", environment)
        url = f"http://{HOST}:{port}"
        _wait_until(
            lambda: _is_ready(url),
            process,
            BRIDGE_START_SECONDS,
            "the bridge",
            self._log("bridge.log"),
        )
        logger.info("Bridge (pid %s) is ready at %s", process.pid, url)
        return url

    # -------------------------------------------------------------------------------------
    # Helpers
    # -------------------------------------------------------------------------------------

    def _tool(self, name: str) -> Path:
        local = self.project_dir / "node_modules" / ".bin" / name
        if local.exists():
            return local
        found = shutil.which(name)
        if found is None:
            raise StackError(
                f"{name} was found neither in {local.parent} nor on PATH. Run `make install` "
                "in the repository, which installs it from npm."
            )
        return Path(found)

    def _tool_environment(self) -> dict[str, str]:
        """Return the environment for the deployment and the bridge, without the caller's LEDGER_*.

        The caller's LEDGER_* settings describe another system, and a signer key
        among them would not match the fresh deployment's accounts.
        """
        environment = {
            name: value for name, value in os.environ.items() if not name.startswith("LEDGER_")
        }
        node_bin = self.project_dir / "node_modules" / ".bin"
        venv_bin = Path(sys.executable).parent
        environment["PATH"] = os.pathsep.join(
            [str(node_bin), str(venv_bin), environment.get("PATH", "")]
        )
        package_root = str(Path(ledger_bridge.__file__).resolve().parents[1])
        environment["PYTHONPATH"] = os.pathsep.join(
            filter(None, [package_root, environment.get("PYTHONPATH")])
        )
        solc = self.project_dir / ".solcx"
        if "SOLCX_BINARY_PATH" not in environment and solc.is_dir():
            environment["SOLCX_BINARY_PATH"] = str(solc)
        return environment

    def _spawn(
        self, command: list[str], log_name: str, environment: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        log = self._log(log_name).open("wb")
        self._logs.append(log)
        try:
            process = subprocess.Popen(
                command,
                cwd=self.project_dir,
                env=dict(environment),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            raise StackError(f"{command[0]} could not start: {error}") from error
        self._processes.append(process)
        return process

    def _log(self, name: str) -> Path:
        return self.run_dir / name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _answers_rpc(url: str) -> bool:
    request = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        return httpx.post(url, json=request, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until(
    check: Callable[[], bool],
    process: subprocess.Popen[bytes],
    seconds: float,
    name: str,
    log: Path,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(
                f"{name} exited with status {process.returncode} while starting:\n{_tail(log)}"
            )
        if check():
            return
        time.sleep(0.1)
    raise StackError(f"{name} did not start within {seconds:.0f} s:\n{_tail(log)}")


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop a process this module started in its own session, with what it spawned."""
    if process.poll() is not None:
        return
    group = process.pid  # start_new_session made the process the leader of this group
    try:
        os.killpg(group, signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning("Process %s did not stop within %s s; killing it", group, STOP_SECONDS)
        os.killpg(group, signal.SIGKILL)
        process.wait(timeout=STOP_SECONDS)
    except ProcessLookupError:
        process.wait(timeout=STOP_SECONDS)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])
