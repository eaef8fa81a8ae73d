"""The `ledger-bridge` command: database upgrades, organisations, credentials and the server."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from pydantic import ValidationError
from sqlalchemy.orm import Session

from ledger_bridge.core.config import Settings, get_settings
from ledger_bridge.core.errors import LedgerBridgeError
from ledger_bridge.core.security import IssuedCredential, Role
from ledger_bridge.scenarios.cli import add_scenario_command
from ledger_bridge.storage import organisations as store
from ledger_bridge.storage.db import create_db_engine, create_session_factory, upgrade_to_head

Command = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status: 0 on success, 1 on error."""
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        settings = get_settings()
    except ValidationError as error:
        _print_settings_errors(error)
        return 1
    try:
        return arguments.command(arguments, settings)
    except LedgerBridgeError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ledger-bridge",
        description="Operate the ledger bridge. Settings come from LEDGER_* environment variables.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    _add_db_commands(commands)
    _add_org_commands(commands)
    _add_credential_commands(commands)
    _add_serve_command(commands)
    add_scenario_command(commands)
    return parser


def _add_db_commands(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="manage the database schema")
    actions = db.add_subparsers(required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply every pending migration")
    upgrade.set_defaults(command=_run_db_upgrade)


def _add_org_commands(commands: argparse._SubParsersAction) -> None:
    org = commands.add_parser("org", help="manage organisations")
    actions = org.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create an organisation and print its first credential once"
    )
    create.add_argument("--name", required=True, help="organisation name, unique")
    create.add_argument("--kind", required=True, choices=[role.value for role in Role])
    create.add_argument("--facility", help="facility contract address, required for a bank")
    _add_json_flag(create)
    create.set_defaults(command=_run_org_create)


def _add_credential_commands(commands: argparse._SubParsersAction) -> None:
    credential = commands.add_parser("credential", help="manage API credentials")
    actions = credential.add_subparsers(required=True, metavar="ACTION")
    issue = actions.add_parser("issue", help="issue another credential for an organisation")
    issue.add_argument("--org-id", required=True, type=uuid.UUID, help="organisation id")
    _add_json_flag(issue)
    issue.set_defaults(command=_run_credential_issue)
    rotate = actions.add_parser("rotate", help="replace a credential's secret and print it once")
    rotate.add_argument("--key-id", required=True, help="key id of the credential")
    _add_json_flag(rotate)
    rotate.set_defaults(command=_run_credential_rotate)
    revoke = actions.add_parser("revoke", help="revoke a credential")
    revoke.add_argument("--key-id", required=True, help="key id of the credential")
    revoke.set_defaults(command=_run_credential_revoke)


def _add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default %(default)s)")
    serve.set_defaults(command=_run_serve)


def _add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def _run_db_upgrade(arguments: argparse.Namespace, settings: Settings) -> int:
    upgrade_to_head(settings.database_url)
    print("Database schema is up to date.")
    return 0


def _run_org_create(arguments: argparse.Namespace, settings: Settings) -> int:
    with _open_session(settings) as session:
        created = store.create_organisation(
            session,
            name=arguments.name,
            kind=Role(arguments.kind),
            facility_address=arguments.facility,
        )
        organisation = created.organisation
        details = {
            "organisation_id": str(organisation.id),
            "name": organisation.name,
            "kind": organisation.kind.value,
            "facility_address": organisation.facility_address,
        }
    _print_credential(created.credential, details, as_json=arguments.json)
    return 0


def _run_credential_issue(arguments: argparse.Namespace, settings: Settings) -> int:
    with _open_session(settings) as session:
        issued = store.issue_credential(session, arguments.org_id)
    details = {"organisation_id": str(arguments.org_id)}
    _print_credential(issued, details, as_json=arguments.json)
    return 0


def _run_credential_rotate(arguments: argparse.Namespace, settings: Settings) -> int:
    with _open_session(settings) as session:
        issued = store.rotate_credential(session, arguments.key_id)
    _print_credential(issued, {}, as_json=arguments.json)
    return 0


def _run_credential_revoke(arguments: argparse.Namespace, settings: Settings) -> int:
    with _open_session(settings) as session:
        credential = store.revoke_credential(session, arguments.key_id)
        revoked_at = credential.revoked_at
    print(f"Credential {arguments.key_id} is revoked since {revoked_at}.")
    return 0


def _run_serve(arguments: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from ledger_bridge.app import create_app
    from ledger_bridge.core.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    # Move the objects of the imported libraries (web3, eth-abi, pydantic, SQLAlchemy) out of
    # the collector's reach. Otherwise each full collection walks them all and stops every
    # thread for up to a few hundred milliseconds under load, which shows in the request latency.
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=arguments.host, port=arguments.port, log_config=None)
    return 0


@contextmanager
def _open_session(settings: Settings) -> Iterator[Session]:
    """Open a session on an up-to-date schema, and close it and its engine afterwards."""
    if settings.migrate_on_start:
        upgrade_to_head(settings.database_url)
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def _print_credential(
    issued: IssuedCredential, details: dict[str, str | None], *, as_json: bool
) -> None:
    if as_json:
        print(json.dumps({**details, "key_id": issued.key_id, "token": issued.token}))
        return
    for name, value in details.items():
        print(f"{name}: {value}")
    print(f"key_id: {issued.key_id}")
    print(f"token: {issued.token}")
    print(
        "The token is shown only now. Store it in the client's secret store, and send it as "
        "'Authorization: Bearer <token>'.",
        file=sys.stderr,
    )


def _print_settings_errors(error: ValidationError) -> None:
    print("error: the LEDGER_* settings are invalid:", file=sys.stderr)
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "settings"
        message = item["msg"].removeprefix("Value error, ")
        print(f"  {field}: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
