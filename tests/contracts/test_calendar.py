"""CreditCalendar against Python's datetime, for every day from 1970 to 2100."""

from datetime import date, datetime, timedelta, timezone

import pytest

EPOCH = date(1970, 1, 1)
LAST_DAY = (date(2100, 12, 31) - EPOCH).days
CHUNK = 1_000


@pytest.fixture(scope="module")
def calendar(project, accounts):
    return project.CalendarHarness.deploy(sender=accounts[0])


def expected_next_settlement(day: date, settlement_day: int) -> int:
    if day.day < settlement_day:
        target = day.replace(day=settlement_day)
    elif day.month == 12:
        target = date(day.year + 1, 1, settlement_day)
    else:
        target = date(day.year, day.month + 1, settlement_day)
    return (target - EPOCH).days


@pytest.mark.parametrize("settlement_day", [21, 1, 28])
def test_calendar_matches_datetime_for_every_day(calendar, settlement_day):
    for first in range(0, LAST_DAY + 1, CHUNK):
        count = min(CHUNK, LAST_DAY + 1 - first)

        dates, next_settlements, round_trips = calendar.describe(first, count, settlement_day)

        assert round_trips, f"fromDate(toDate(day)) differs in days {first}..{first + count - 1}"
        for offset in range(count):
            day = EPOCH + timedelta(days=first + offset)
            assert dates[offset] == day.year * 10_000 + day.month * 100 + day.day, day
            assert next_settlements[offset] == expected_next_settlement(day, settlement_day), day


@pytest.mark.parametrize(
    "moment, expected",
    [
        (datetime(2027, 1, 4, 23, 59, 59, tzinfo=timezone(timedelta(hours=8))), date(2027, 1, 4)),
        (datetime(2027, 1, 4, 16, 0, 0, tzinfo=timezone.utc), date(2027, 1, 5)),
        (datetime(2027, 1, 4, 15, 59, 59, tzinfo=timezone.utc), date(2027, 1, 4)),
    ],
    ids=["cst-last-second", "utc-16h-is-next-cst-day", "utc-before-16h"],
)
def test_day_of_counts_china_standard_time(calendar, moment, expected):
    assert calendar.dayOf(int(moment.timestamp())) == (expected - EPOCH).days
