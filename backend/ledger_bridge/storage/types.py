"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

UINT256_DIGITS = 78


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime.

    SQLite stores datetimes without an offset, so values are converted to UTC
    on the way in and marked as UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"UTCDateTime requires a timezone-aware datetime, not {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class UInt256(TypeDecorator[int]):
    """A uint256 stored as a 78-digit zero-padded decimal string.

    Neither SQLite's INTEGER (64 bits) nor its NUMERIC (which falls back to
    floating point) stores 256 bits exactly. Zero padding keeps string order
    equal to numeric order, so range queries and ORDER BY work on both backends.
    """

    impl = String(UINT256_DIGITS)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"UInt256 requires an int, not {type(value).__name__}")
        if not 0 <= value < 2**256:
            raise ValueError(f"UInt256 value {value} is outside 0 .. 2**256 - 1")
        return str(value).zfill(UINT256_DIGITS)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return int(value)
