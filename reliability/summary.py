"""Add up the reports of a `make reliability` run and print its one-line verdict.

Usage: `python -m reliability.summary REPORT_DIR`

Each part of the run writes a JSON report into REPORT_DIR: invariants.json (contract
invariant machines), slither.json, api_fuzz.json, security.json, chaos.json and
replicas.json. The last line printed is "reliability: lost=N duplicated=N server_errors=N
invariant_steps=N slither_high=N slither_medium=N", on one line.

A part whose report is missing is named above that line, and makes the exit status 1, as does
any count other than invariant_steps that is not zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PARTS = ("invariants", "slither", "api_fuzz", "security", "chaos", "replicas")
# Counts that must be zero in a passing run, besides the six of the final line.
OTHER_FAILURES = {
    "invariants": ("failures",),
    "api_fuzz": ("schema_failures", "stored_after_rejection"),
    "security": ("failures",),
    "chaos": ("nonce_errors", "index_mismatches", "unfinished", "rejected_stored"),
    "replicas": ("nonce_errors", "index_mismatches", "unfinished", "rejected_stored"),
}


def summarise(folder: Path) -> tuple[dict[str, int], list[str]]:
    """Return the six counts of the final line and the problems found besides them."""
    reports: dict[str, dict[str, Any]] = {}
    problems = []
    for part in PARTS:
        path = folder / f"{part}.json"
        if path.exists():
            reports[part] = json.loads(path.read_text())
        else:
            problems.append(f"{part}: no report at {path}; that part did not finish")
    totals = {
        "lost": _sum(reports, ("chaos", "replicas"), "lost"),
        "duplicated": _sum(reports, ("chaos", "replicas"), "duplicated"),
        "server_errors": _sum(reports, ("api_fuzz", "chaos", "replicas"), "server_errors"),
        "invariant_steps": _sum(reports, ("invariants",), "invariant_steps"),
        "slither_high": _sum(reports, ("slither",), "slither_high"),
        "slither_medium": _sum(reports, ("slither",), "slither_medium"),
    }
    for part, keys in OTHER_FAILURES.items():
        for key in keys:
            count = int(reports.get(part, {}).get(key, 0))
            if count:
                problems.append(f"{part}: {key}={count}")
    return totals, problems


def _sum(reports: dict[str, dict[str, Any]], parts: tuple[str, ...], key: str) -> int:
    return sum(int(reports.get(part, {}).get(key, 0)) for part in parts)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: python -m reliability.summary REPORT_DIR", file=sys.stderr)
        return 2
    totals, problems = summarise(Path(sys.argv[1]))
    for problem in problems:
        print(problem)
    print("reliability: " + " ".join(f"{key}={value}" for key, value in totals.items()))
    failed = problems or any(value for key, value in totals.items() if key != "invariant_steps")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
