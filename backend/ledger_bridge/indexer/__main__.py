"""Run the event indexer alone: `python -m ledger_bridge.indexer [--once] [--reset]`.

Settings come from the same LEDGER_* environment variables as the bridge.
Run it when the HTTP replicas set LEDGER_INDEXER_ENABLED=false, so that one
process follows the chain for all of them. SIGTERM and SIGINT stop it after
the current range. Exit status: 0 when stopped, 1 when the indexer halted
or the settings are invalid.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from pydantic import ValidationError

from ledger_bridge.chain.client import create_web3
from ledger_bridge.chain.deployment import load_deployment, verify_chain
from ledger_bridge.core.config import Settings, get_settings
from ledger_bridge.core.errors import LedgerBridgeError
from ledger_bridge.indexer.service import EventIndexer, create_indexer
from ledger_bridge.indexer.store import reset_index
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head

logger = logging.getLogger("ledger_bridge.indexer")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the indexer until a signal stops it, and return the exit status."""
    arguments = _parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as error:
        print(f"error: invalid settings: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return _run(arguments, settings)
    except LedgerBridgeError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ledger_bridge.indexer",
        description="Follow the contracts' events into the database named by LEDGER_DATABASE_URL.",
    )
    parser.add_argument(
        "--once", action="store_true", help="stop once the index has reached the chain's head"
    )
    parser.add_argument(
        "--reset",
        action="store_true",
        help="delete every indexed event first, so the index is read again from the chain",
    )
    return parser


def _run(arguments: argparse.Namespace, settings: Settings) -> int:
    if settings.migrate_on_start:
        upgrade_to_head(settings.database_url)
    session_factory = create_session_factory(create_db_engine(settings.database_url))
    deployment = load_deployment(settings.deployment_file)
    verify_chain(deployment, create_web3(settings.rpc_url, settings.rpc_timeout_seconds))
    if arguments.reset:
        with session_factory() as session:
            deleted = reset_index(session)
        logger.warning("Deleted the index: %s events", deleted)
    indexer = create_indexer(settings, deployment, session_factory)
    if arguments.once:
        _catch_up(indexer)
        return 0
    _stop_on_signals(indexer)
    indexer.run()
    if indexer.halted is not None:
        print(f"error: {indexer.halted.message}", file=sys.stderr)
        return 1
    return 0


def _catch_up(indexer: EventIndexer) -> None:
    """Run passes until two in a row find no new block. Two are needed because a rewind
    after a reorganisation covers no block either. Raises IndexerHaltedError on a halt.
    """
    idle_passes = 0
    while idle_passes < 2:
        idle_passes = idle_passes + 1 if indexer.run_once() == 0 else 0


def _stop_on_signals(indexer: EventIndexer) -> None:
    def stop(signal_number: int, frame: FrameType | None) -> None:
        logger.info("Stopping on signal %s after the current range", signal_number)
        indexer.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


if __name__ == "__main__":
    sys.exit(main())
