"""Schemathesis fuzzing of every operation in the running bridge's OpenAPI document.

Each generated request is sent over HTTP to `ledger-bridge serve` on a real
Anvil and a real SQLite database, once with the credential of each role. Every
response must be free of server errors and match the status codes, media
types, headers and bodies the document declares. A request the bridge rejects
with 4xx must leave no stored row behind and must not move any signer's nonce.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker

from integration.conftest import OpenLine

from .conftest import (
    FULL_RUN,
    BridgeServer,
    Footprint,
    FootprintReader,
    Member,
    wait_until_quiet,
    write_report,
)

# Examples per operation, valid and invalid mixed. Each is sent once per role.
EXAMPLES_PER_OPERATION = 12 if FULL_RUN else 2
ROLES = ("bank", "auditor", "regulator", "admin")
CONFORMANCE_CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class FuzzTally:
    """Counts over the whole run, and one description per distinct failure."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.failures: dict[str, str] = {}

    def fail(self, kind: str, key: str, description: str) -> None:
        self.counts[kind] += 1
        self.failures.setdefault(f"{kind}: {key}", description)


def fuzz_operation(
    operation: Any,
    callers: dict[str, Member],
    bridge: BridgeServer,
    tally: FuzzTally,
    footprints: FootprintReader,
    session_factory: sessionmaker[Session],
    path_ids: dict[str, Any],
) -> None:
    strategies = [
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE),
    ]
    names = set(re.findall(r"{(\w+)}", operation.path))
    if names and names <= path_ids.keys():
        # Ids that exist, so that generated bodies reach the checks behind the path lookup.
        known = {name: path_ids[name] for name in names}
        strategies.append(
            operation.as_strategy(
                generation_mode=schemathesis.GenerationMode.POSITIVE, path_parameters=known
            )
        )
    strategy = st.one_of(strategies)

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def send_as_each_role(case: Any) -> None:
        before: Footprint | None = None
        for role, member in callers.items():
            if before is None:
                wait_until_quiet(session_factory)
                before = footprints.read()
            response = case.call(base_url=bridge.url, headers=member.headers, timeout=30)
            tally.counts["requests"] += 1
            check_response(case, response, f"{operation.label} as {role}", tally)
            if not 400 <= response.status_code < 500:
                # An accepted write moves nonces once the worker sends it.
                before = None
                continue
            after = footprints.read()
            if after != before:
                tally.fail(
                    "stored_after_rejection",
                    f"{operation.label} as {role}",
                    f"{case.as_curl_command()} -> {response.status_code}: {before} became {after}",
                )
            before = after

    send_as_each_role()


def check_response(case: Any, response: Any, label: str, tally: FuzzTally) -> None:
    try:
        case.validate_response(response, checks=[not_a_server_error])
    except FailureGroup as error:
        tally.fail("server_errors", label, str(error))
    try:
        case.validate_response(response, checks=CONFORMANCE_CHECKS)
    except FailureGroup as error:
        tally.fail("schema_failures", label, str(error))


def test_every_operation_survives_fuzzing(
    bridge: BridgeServer,
    bank: Member,
    auditor: Member,
    regulator: Member,
    admin: Member,
    session_factory: sessionmaker[Session],
    footprints: FootprintReader,
    open_line: OpenLine,
) -> None:
    path_ids = {
        "line_id": open_line(1_000_000),
        "organisation_id": str(admin.organisation_id),
        "category": 901,
    }
    schema = schemathesis.openapi.from_url(f"{bridge.url}/openapi.json")
    callers = dict(zip(ROLES, (bank, auditor, regulator, admin), strict=True))
    tally = FuzzTally()

    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        fuzz_operation(operation, callers, bridge, tally, footprints, session_factory, path_ids)

    report = {
        "requests": tally.counts["requests"],
        "server_errors": tally.counts["server_errors"],
        "schema_failures": tally.counts["schema_failures"],
        "stored_after_rejection": tally.counts["stored_after_rejection"],
    }
    write_report("api_fuzz", report)
    assert len(operations) > 60, "the OpenAPI document lost its operations"
    assert report["requests"] >= len(operations) * len(ROLES)
    details = "\n\n".join(f"{key}\n{text}" for key, text in tally.failures.items())
    assert report["server_errors"] == 0, details
    assert report["schema_failures"] == 0, details
    assert report["stored_after_rejection"] == 0, details
