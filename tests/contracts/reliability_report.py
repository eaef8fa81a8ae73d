"""Counts of the randomized state machines' work, written as the reliability report.

Each machine adds the rule calls it ran and the examples it started to `COUNTS`. The conftest
counts the failed machine tests and writes the report at the end of the session.
"""

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

COUNTS: Counter = Counter(invariant_steps=0, examples=0, failures=0)

# LEDGER_RELIABILITY_FULL=1 selects the long runs. LEDGER_RELIABILITY_REPORT_DIR names the
# directory that receives invariants.json.
FULL_RUN = os.environ.get("LEDGER_RELIABILITY_FULL") == "1"
REPORT_DIR = os.environ.get("LEDGER_RELIABILITY_REPORT_DIR")


def write_report(directory: str) -> Path:
    """Write the counts to `<directory>/invariants.json` atomically and return the path."""
    target = Path(directory) / "invariants.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    report = {name: COUNTS[name] for name in ("invariant_steps", "examples", "failures")}
    with tempfile.NamedTemporaryFile(
        "w", dir=target.parent, prefix=".invariants-", suffix=".json", delete=False
    ) as handle:
        json.dump(report, handle)
        handle.write("\n")
    os.replace(handle.name, target)
    return target
