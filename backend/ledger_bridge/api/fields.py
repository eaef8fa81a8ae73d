"""Request field types beyond amounts, addresses and hashes: dates, rates, categories and ids.

Each type validates strictly, so that a JSON number never passes as a date
and a string never passes as a rate, and its error message names the form
expected. Dates are calendar dates in China Standard Time, the calendar the
contracts count days in.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, ClassVar

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from ledger_bridge.categories import CATEGORIES, describe_categories, list_codes
from ledger_bridge.core.errors import InvalidValueError

# The contracts reject rates of 0 and above 10000 basis points (100% a year).
MIN_RATE_BPS = 1
MAX_RATE_BPS = 10_000
MAX_LINE_ID = 2**64 - 1
MAX_DRAWDOWN_ID = 2**64 - 1
MAX_POOL_ID = 2**32 - 1

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Day number 0 (1970-01-01) means "no day" in some contract arguments, such as a renewal's
# rate effective day, so dates start the day after.
_EARLIEST_DATE = date(1970, 1, 2)


class InvalidDateError(InvalidValueError):
    """A date is not an ISO calendar date that the contracts can count."""

    title = "Invalid date"
    slug = "invalid-date"
    expected = 'an ISO 8601 calendar date as a JSON string, such as "2027-06-30"'


class InvalidRateError(InvalidValueError):
    """An interest rate is not a whole number of basis points in range."""

    title = "Invalid rate"
    slug = "invalid-rate"
    expected = (
        f"a JSON integer of basis points from {MIN_RATE_BPS} to {MAX_RATE_BPS}, "
        "such as 435 for 4.35% a year"
    )


class InvalidCategoryError(InvalidValueError):
    """A payee category is not one of the documented codes."""

    title = "Invalid category"
    slug = "invalid-category"
    expected = f"one of the documented category codes as a JSON integer: {list_codes()}"


class InvalidIdError(InvalidValueError):
    """A line, drawdown or pool id is not a positive integer in the contract's range."""

    title = "Invalid id"
    slug = "invalid-id"
    expected: ClassVar[str] = "a positive JSON integer"


def parse_iso_date(value: object) -> date:
    """Return the date of a "YYYY-MM-DD" string, or raise InvalidDateError."""
    if not isinstance(value, str):
        raise InvalidDateError(value, "is not a JSON string")
    if _ISO_DATE.fullmatch(value) is None:
        raise InvalidDateError(value, "is not of the form YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError as error:
        raise InvalidDateError(value, "is not a day of the calendar") from error
    if parsed < _EARLIEST_DATE:
        raise InvalidDateError(value, "is before 1970-01-02")
    return parsed


def parse_rate_bps(value: object) -> int:
    """Return a rate in basis points, or raise InvalidRateError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRateError(value, "is not a JSON integer")
    if not MIN_RATE_BPS <= value <= MAX_RATE_BPS:
        raise InvalidRateError(value, f"is outside {MIN_RATE_BPS} to {MAX_RATE_BPS}")
    return value


def parse_category(value: object) -> int:
    """Return a documented category code, or raise InvalidCategoryError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCategoryError(value, "is not a JSON integer")
    if value not in CATEGORIES:
        raise InvalidCategoryError(value, "is not a documented category code")
    return value


def _id_parser(maximum: int) -> Any:
    def parse(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidIdError(value, "is not a JSON integer")
        if not 1 <= value <= maximum:
            raise InvalidIdError(value, f"is outside 1 to {maximum}")
        return value

    return parse


def _validator(parse: Any) -> PlainValidator:
    """Wrap a parse function so its message reaches the problem response unchanged."""

    def validate(value: object) -> Any:
        try:
            return parse(value)
        except InvalidValueError as error:
            raise PydanticCustomError(error.slug, error.message) from error

    return PlainValidator(validate)


def _integer_schema(maximum: int, description: str, example: int) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "type": "integer",
            "minimum": 1,
            "maximum": maximum,
            "examples": [example],
            "description": description,
        }
    )


IsoDate = Annotated[
    date,
    _validator(parse_iso_date),
    PlainSerializer(date.isoformat, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "examples": ["2027-06-30"],
            "description": (
                "Calendar date in China Standard Time as YYYY-MM-DD. The bridge sends it "
                "to the contract as a day number (days since 1970-01-01)."
            ),
        }
    ),
]
"""Request field: an ISO date, validated into a `date`."""

RateBps = Annotated[
    int,
    _validator(parse_rate_bps),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": MIN_RATE_BPS,
            "maximum": MAX_RATE_BPS,
            "examples": [435],
            "description": "Annual interest rate in basis points: 435 is 4.35% a year.",
        }
    ),
]
"""Request field: an annual rate in basis points, 1 to 10000."""

CATEGORY_DESCRIPTION = "Payee category code, one of:\n\n" + describe_categories()

CategoryCode = Annotated[
    int,
    _validator(parse_category),
    WithJsonSchema(
        {
            "type": "integer",
            "enum": sorted(CATEGORIES),
            "examples": [103],
            "description": CATEGORY_DESCRIPTION,
        }
    ),
]
"""Request field: a documented payee category code."""

LineIdValue = Annotated[
    int,
    _validator(_id_parser(MAX_LINE_ID)),
    _integer_schema(MAX_LINE_ID, "A line's id in your facility (uint64, from 1).", 7),
]
DrawdownIdValue = Annotated[
    int,
    _validator(_id_parser(MAX_DRAWDOWN_ID)),
    _integer_schema(
        MAX_DRAWDOWN_ID,
        "A self-directed drawdown's id in your facility (uint64, from 1), as the drawdown "
        "operation's result names it.",
        12,
    ),
]
PoolIdValue = Annotated[
    int,
    _validator(_id_parser(MAX_POOL_ID)),
    _integer_schema(MAX_POOL_ID, "A shared credit pool's id in your facility (uint32).", 1),
]
