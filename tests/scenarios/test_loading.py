"""Reading scenario files: the YAML rules and the messages that name line and field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from ledger_bridge.scenarios.errors import ScenarioFileError
from ledger_bridge.scenarios.loading import parse_scenario, parse_yaml
from ledger_bridge.scenarios.model import Drawdown
from ledger_bridge.scenarios.timeline import Phase, build_timeline

FILE = Path("case.yaml")

VALID = """\
organisations: {bank: {name: test-bank}}
payees:
  - {label: supplier, category: 103}
lines:
  - {label: main, limit: 1000000.00, rate_bps: 435, opened: 2027-01-04, maturity: 2027-12-31}
actions:
  - date: 2027-01-05
    time: 14:30
    action: drawdown
    line: main
    amount: 2500.50
    mode: entrusted
    payee: supplier
    invoice: invoice-1
    expect: {principal: 2500.50}
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ScenarioFileError) as raised:
        parse_scenario(text, FILE)
    return list(raised.value.problems)


def test_yaml_keeps_decimals_as_strings() -> None:
    parsed = parse_yaml("amount: 2500000.10\ntime: 10:30\ncount: 12\nday: 2027-01-05\n", FILE)

    assert parsed.data == {
        "amount": "2500000.10",
        "time": "10:30",
        "count": 12,
        "day": dt.date(2027, 1, 5),
    }


def test_valid_file_parses_amounts_to_fen() -> None:
    scenario = parse_scenario(VALID, FILE)

    action = scenario.actions[0]
    assert isinstance(action, Drawdown)
    assert action.amount == 250_050
    assert action.time == dt.time(14, 30)
    assert scenario.name == "case"
    assert scenario.lines[0].settlement_day == 21


def test_amount_with_three_decimals_names_line_and_field() -> None:
    problems = problems_of(VALID.replace("amount: 2500.50", "amount: 2500.505"))

    assert len(problems) == 1
    assert problems[0].startswith("line 11: actions[0].amount: '2500.505' is not an amount")


def test_missing_field_names_its_action() -> None:
    problems = problems_of(VALID.replace("    line: main\n", ""))

    assert problems == ["line 7: actions[0].line: Field required"]


def test_unknown_action_lists_the_known_ones() -> None:
    problems = problems_of(VALID.replace("action: drawdown", "action: withdraw"))

    assert problems[0].startswith("line 7: actions[0]: Input tag 'withdraw'")
    assert "'pay_from_locked'" in problems[0]


def test_unknown_label_lists_declared_labels() -> None:
    problems = problems_of(VALID.replace("payee: supplier", "payee: exchange"))

    assert problems == [
        "line 13: actions[0].payee: no payee has the label 'exchange'; declared payees: supplier"
    ]


def test_action_before_line_opens_is_rejected() -> None:
    problems = problems_of(
        VALID.replace("date: 2027-01-05", "date: 2027-01-04").replace("time: 14:30", "time: 09:00")
    )

    assert problems == [
        "line 7: actions[0].date: line 'main' opens at 2027-01-04 10:00, after this action "
        "at 2027-01-04 09:00"
    ]


def test_actions_out_of_order_are_rejected() -> None:
    text = VALID + "  - {date: 2027-01-05, action: repay_interest, line: main}\n"

    problems = problems_of(text)

    assert problems == [
        "line 16: actions[1].date: 2027-01-05 10:00 is before the previous action "
        "(2027-01-05 14:30); list actions in date and time order"
    ]


def test_entrusted_drawdown_needs_payee() -> None:
    problems = problems_of(VALID.replace("    payee: supplier\n", ""))

    assert problems == ["line 7: actions[0]: an entrusted drawdown needs payee and invoice"]


def test_unknown_contract_error_is_rejected() -> None:
    text = VALID.replace("expect: {principal: 2500.50}", "expect: {error: LimitTooHigh}")

    problems = problems_of(text)

    assert len(problems) == 1
    assert problems[0].startswith(
        "line 15: actions[0].expect.error: 'LimitTooHigh' is not an error"
    )


def test_undocumented_category_is_rejected() -> None:
    problems = problems_of(VALID.replace("category: 103", "category: 555"))

    assert problems[0].startswith("line 3: payees[0].category: 555 is not a documented category")


def test_duplicate_key_is_rejected() -> None:
    problems = problems_of(VALID.replace("    line: main\n", "    line: main\n    line: other\n"))

    assert problems == ["line 11: key 'line' appears twice"]


def test_payout_needs_earlier_drawdown_ref() -> None:
    text = VALID + (
        "  - {date: 2027-01-06, action: pay_from_locked, drawdown: cash, payee: supplier,"
        " amount: 10.00, invoice: i-2}\n"
    )

    assert problems_of(text) == [
        "line 16: actions[1].drawdown: no earlier self_directed drawdown has ref 'cash'"
    ]


def test_timeline_puts_setup_before_actions_at_same_moment() -> None:
    scenario = parse_scenario(
        VALID.replace("date: 2027-01-05", "date: 2027-01-04").replace("time: 14:30", "time: 10:00"),
        FILE,
    )

    phases = [step.phase for step in build_timeline([scenario])]

    assert phases == [Phase.PAYEE, Phase.LINE, Phase.ACTION]
