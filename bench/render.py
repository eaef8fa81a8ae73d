"""Write docs/benchmarks.md from the measured results in bench/.

Usage: `python bench/render.py`, which `make bench` runs last. It reads bench/gas.json and the
files the other benchmarks wrote, writes the flat figures to bench/results.json, and renders the
page. Every figure on the page comes from those files; the anchors are published figures of
other systems.
"""

import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GAS_FILE = ROOT / "bench" / "gas.json"
RESULT_FILES = {
    "bridge": ROOT / "bench" / "bridge_throughput.json",
    "indexer": ROOT / "bench" / "indexer_backfill.json",
    "history": ROOT / "bench" / "history_queries.json",
}
RESULTS_FILE = ROOT / "bench" / "results.json"
PAGE = ROOT / "docs" / "benchmarks.md"
GOAL_GAS = 70_000
BRIDGE_KEYS = (
    "confirmed_per_s",
    "raw_send_per_s",
    "ratio",
    "accept_p95_ms",
    "nonce_errors",
    "peak_rss_mb",
)
COMPOUND_BORROW = "Compound III borrow 140,549"
AAVE_BORROW = "Aave v3 borrow about 270,000"
ERC20_TRANSFER = "ERC-20 transfer about 42,000"
# Key in bench/results.json, label, goal (direction and bound, or None), anchor.
GOALS = (
    ("gas.drawdown_entrusted", "gas, entrusted drawdown", ("<=", GOAL_GAS), COMPOUND_BORROW),
    ("gas.drawdown_self_directed", "gas, self-directed drawdown", ("<=", GOAL_GAS), AAVE_BORROW),
    ("gas.repay", "gas, repay", ("<=", GOAL_GAS), "Aave v3 repay about 200,000"),
    ("gas.payout_from_locked", "gas, payout from a locked balance", None, ERC20_TRANSFER),
    ("bridge.confirmed_per_s", "bridge, confirmed drawdowns per second", None, ""),
    ("bridge.raw_send_per_s", "node, raw pre-signed transactions per second", None, ""),
    ("bridge.ratio", "bridge rate over raw rate", (">=", 0.5), ""),
    ("bridge.accept_p95_ms", "bridge, p95 ms to accepted", ("<=", 50.0), ""),
    ("bridge.nonce_errors", "bridge, nonce errors", ("<=", 0), ""),
    ("bridge.peak_rss_mb", "bridge, peak memory MB", None, ""),
    ("indexer.events_per_s", "indexer backfill, events per second", (">=", 10_000), ""),
    ("indexer.visible_p95_ms", "indexer, p95 ms from mined to queryable", ("<=", 1_500.0), ""),
    ("history.sqlite_p95_ms", "history page of 100, SQLite p95 ms", ("<=", 25.0), ""),
    ("history.postgres_p95_ms", "history page of 100, PostgreSQL p95 ms", None, ""),
)

OPERATIONS = (
    ("open_line", "open a line (after application and approval)"),
    ("drawdown_entrusted", "drawdown, entrusted payment to a registered payee"),
    ("drawdown_self_directed", "drawdown into the borrower's locked balance"),
    ("payout_from_locked", "payout from a locked balance"),
    ("repay", "repayment of principal"),
    ("payoff", "payoff"),
    ("settle", "repay the interest settled that day"),
    ("limit_change", "limit change by one officer"),
    ("renewal", "renewal with a new rate (eight months since the last touch)"),
    ("payee_registration", "payee registration"),
)
ANCHORS = (
    ("Compound III borrow", "140,549"),
    ("Aave v3 borrow", "about 270,000"),
    ("Aave v3 repay", "about 200,000"),
    ("OpenZeppelin ERC-20 transfer to an existing holder", "about 42,000"),
)

# The entrusted drawdown's gas by part, from Anvil's callTracer on the transaction that
# scripts/measure_gas.py sends (115,413 gas in the run measured on 2026-12-04).
GOAL_ANALYSIS = (
    "## Where the drawdown's gas goes, and what remains",
    "",
    "A call trace (`debug_traceTransaction` with `callTracer`) of the measured entrusted drawdown",
    "splits its 115,413 gas into: 21,000 transaction base and about 2,400 of calldata; 2,735 for the",
    "token `balanceOf` that computes free liquidity; 7,559 for `FundFlowRules.checkPayout`; 11,086 for",
    "the token transfer to the payee; about 5,200 for first access to the token and rules contracts;",
    "and about 65,000 inside the facility. Of the facility's share, storage accounts for an estimated",
    "38,000 (role check, request-id word, three line slots read and written, policy, counters) and",
    "events for about 6,000; the rest is execution of the lazy accrual step and the field-by-field",
    "copies of the line's accrual state between storage and memory.",
    "",
    "The goal of 70,000 for drawdown and repayment is not met. The locked total already shares the",
    "counters' slot, so a self-directed drawdown touches one slot fewer. The largest remaining savings are",
    "in writing the line's three slots as whole words instead of field by field, and in skipping the",
    "accrual step when the line was touched the same day; the fund-flow check and the token transfer",
    "(about 24,000 together) are inherent to paying a checked payee.",
)

OTHER_PAGES = (
    "## Other measurements",
    "",
    "- [History queries on a million events](benchmarks/history-queries.md), SQLite and PostgreSQL.",
    "- [Indexer backfill and visibility on Anvil](benchmarks/indexer.md).",
    "- [Bridge throughput and latency against raw sends](benchmarks/bridge.md).",
)


def main() -> None:
    gas = json.loads(GAS_FILE.read_text())
    measured = {name: _load(path) for name, path in RESULT_FILES.items()}
    results = _results(gas, measured)
    RESULTS_FILE.write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Benchmarks",
        "",
        f"`make bench` measured these figures on {datetime.now(UTC):%Y-%m-%d} on {_machine()},",
        "and wrote them to `bench/results.json`. Each benchmark also writes its own file in",
        "`bench/` with every run, and has its own page for the method. The goal for visibility is",
        "one block (1 s in the benchmark) plus 500 ms. Nothing in `make test` asserts a time.",
        "",
        *_goals_table(results),
        "",
        "## Gas",
        "",
        "`make gas` runs `scripts/measure_gas.py` on Anvil: each figure is the gas of the whole",
        "transaction (21,000 base included) on a warm line, meaning that the line, the payee's token",
        f"balance and the request-id word were written before. Goal for drawdown and repay: at most {GOAL_GAS:,}.",
        "",
        "| operation | gas |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {gas[key]:,} |" for key, label in OPERATIONS if key in gas]
    lines += ["", "Anchors, whole transaction, as published for those systems:", "", "| anchor | gas |", "|---|---:|"]
    lines += [f"| {label} | {figure} |" for label, figure in ANCHORS]
    lines += ["", *GOAL_ANALYSIS, "", *_timing_sections(measured), *OTHER_PAGES]
    PAGE.parent.mkdir(exist_ok=True)
    PAGE.write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS_FILE.relative_to(ROOT)} and {PAGE.relative_to(ROOT)}")


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _results(gas: dict[str, int], measured: dict[str, dict[str, Any] | None]) -> dict[str, Any]:
    """The flat figures of bench/results.json; a benchmark that has not run leaves its keys out."""
    results: dict[str, Any] = {f"gas.{key}": int(gas[key]) for key, _ in OPERATIONS if key in gas}
    bridge = (measured["bridge"] or {}).get("bridge")
    if bridge:
        for key in BRIDGE_KEYS:
            results[f"bridge.{key}"] = _round(bridge[key])
    indexer = measured["indexer"]
    if indexer:
        summary = indexer.get("summary") or {
            "events_per_s": indexer["backfill"]["median_events_per_second"],
            "visible_p95_ms": indexer["visibility"]["p95_ms"],
        }
        results["indexer.events_per_s"] = _round(summary["events_per_s"])
        results["indexer.visible_p95_ms"] = _round(summary["visible_p95_ms"])
    history = measured["history"]
    if history:
        for name in ("sqlite", "postgres"):
            if f"{name}_p95_ms" in history["summary"]:
                results[f"history.{name}_p95_ms"] = _round(history["summary"][f"{name}_p95_ms"])
    return results


def _round(value: float | int) -> float | int:
    return value if isinstance(value, int) else round(float(value), 2)


def _goals_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "## Results against the goals",
        "",
        "| figure | measured | goal | anchor | goal met |",
        "|---|---:|---:|---|:---:|",
    ]
    for key, label, goal, anchor in GOALS:
        value = results.get(key)
        if value is None:
            lines.append(f"| {label} | not measured | {_goal_text(goal)} | {anchor} | |")
            continue
        met = "" if goal is None else ("yes" if _meets(value, goal) else "**no**")
        lines.append(f"| {label} | {_number(value)} | {_goal_text(goal)} | {anchor} | {met} |")
    return lines


def _meets(value: float, goal: tuple[str, float]) -> bool:
    direction, bound = goal
    return value <= bound if direction == "<=" else value >= bound


def _goal_text(goal: tuple[str, float] | None) -> str:
    if goal is None:
        return ""
    direction, bound = goal
    return f"{'at most' if direction == '<=' else 'at least'} {_number(bound)}"


def _number(value: float | int) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"


def _timing_sections(measured: dict[str, dict[str, Any] | None]) -> list[str]:
    lines: list[str] = []
    bridge = measured["bridge"]
    if bridge:
        figures = bridge["bridge"]
        lines += [
            "## Bridge throughput and latency",
            "",
            f"{_workload(bridge)}. Milliseconds from sending the request:",
            "",
            "| to | p50 | p95 | p99 |",
            "|---|---:|---:|---:|",
            *(
                f"| {label} | {figures[f'{part}_p50_ms']:,.1f} | {figures[f'{part}_p95_ms']:,.1f} "
                f"| {figures[f'{part}_p99_ms']:,.1f} |"
                for part, label in (("accept", "accepted (202)"), ("confirm", "confirmed"))
            ),
            "",
            "Method, spread and what remains: [bridge throughput](benchmarks/bridge.md).",
            "",
        ]
    history = measured["history"]
    if history:
        lines += ["## History API on a million events", ""]
        for database in history["databases"].values():
            lines += [
                f"{database['version']}, `GET /v1/lines/{{id}}/history` pages of 100 through the",
                "running bridge, milliseconds:",
                "",
                "| page | p50 | p95 | p99 | slowest |",
                "|---|---:|---:|---:|---:|",
                *(
                    f"| {page} | {spread['p50_ms']:.2f} | {spread['p95_ms']:.2f} "
                    f"| {spread['p99_ms']:.2f} | {spread['max_ms']:.2f} |"
                    for page, spread in database["api"].items()
                ),
                "",
            ]
        lines += [
            "The query alone, and the data: [history queries](benchmarks/history-queries.md).",
            "",
        ]
    return lines


def _workload(bridge: dict[str, Any]) -> str:
    workload = bridge.get("workload", {})
    return (
        f"{workload.get('drawdowns', '?')} drawdowns from {workload.get('clients', '?')} "
        "concurrent clients through `ledger-bridge serve` on Anvil"
    )


def _machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return f"{platform.system()} {platform.machine()}, {cores} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
