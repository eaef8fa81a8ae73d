from datetime import date

from conftest import day_number


def test_first_settlement_matches_staged_drawdowns(facility, open_line, operator, registered_payees, travel, request_id):
    line_id = open_line(3_000_000_000, 435, date(2027, 1, 4), date(2027, 12, 31))
    travel(date(2027, 1, 5))
    facility.drawdown(request_id(), line_id, 250_000_000, registered_payees[0], b"\x33" * 32, sender=operator)

    state = facility.lineState(line_id, day_number(date(2027, 1, 21)))

    assert state.interestDue == 483_333
