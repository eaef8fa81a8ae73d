"""Conversion of ABI-decoded values into JSON and into words.

Decoded integers become decimal strings so that JSON parsers cannot round
them. Argument names tell which integers are amounts in fen and which are
China Standard Time day numbers, because the ABI types alone do not
(uint128 is also used for limits, and uint32 for categories and pool ids).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from eth_utils import keccak, to_checksum_address

from ledger_bridge.money import FEN_PER_UNIT

# Argument names of the contracts' errors and events that carry amounts in fen.
AMOUNT_ARGUMENT_NAMES = frozenset(
    {
        "accruedPaid",
        "allowance",
        "amount",
        "amountWrittenOff",
        "available",
        "availableAfter",
        "balance",
        "currentLimit",
        "entrustedThreshold",
        "interestDue",
        "interestDueAfter",
        "interestDuePaid",
        "limit",
        "liquidity",
        "liquidityAfter",
        "locked",
        "lockedAfter",
        "needed",
        "outstandingAfter",
        "overdueAfter",
        "overdueInterest",
        "overduePaid",
        "owed",
        "poolRoom",
        "poolUsedAfter",
        "previousLimit",
        "principal",
        "principalAfter",
        "principalPaid",
        "proposedLimit",
        "requested",
        "requestedLimit",
        "threshold",
        "totalLockedAfter",
        "value",
        "writtenOffUnrecovered",
    }
)

# Argument names that carry day numbers: days since 1970-01-01 in China Standard Time.
DAY_ARGUMENT_NAMES = frozenset(
    {
        "day",
        "dueDay",
        "earliestDay",
        "effectiveDay",
        "lastChangeDay",
        "lastDay",
        "maturityDay",
        "nextAllowedDay",
        "openedDay",
        "pendingDay",
        "rateEffectiveDay",
        "settlementDay",
        "today",
    }
)

# Members of the contracts' enums, in declaration order, by the ABI's internalType.
ENUM_MEMBERS: Mapping[str, tuple[str, ...]] = {
    "enum ICreditFacility.LineStatus": (
        "None",
        "Applied",
        "Approved",
        "Rejected",
        "Active",
        "Defaulted",
        "WrittenOff",
        "Closed",
    ),
    "enum IFundFlowRules.PayeeStatus": ("None", "Active", "Frozen"),
}

ROLE_NAMES: Mapping[bytes, str] = {
    bytes(32): "DEFAULT_ADMIN_ROLE",
    **{
        keccak(text=name): name
        for name in (
            "OPERATOR_ROLE",
            "CREDIT_OFFICER_ROLE",
            "TREASURY_ROLE",
            "REGULATOR_ROLE",
            "REGISTRAR_ROLE",
            "MINTER_ROLE",
        )
    },
}

_EPOCH = date(1970, 1, 1)

# EIP-55 checksums cost a keccak256 each, and the event indexer converts the same few
# addresses many times.
_checksum_address = lru_cache(maxsize=4096)(to_checksum_address)


def to_json_value(abi_type: str, value: Any) -> Any:
    """Convert one decoded ABI value into a JSON value that keeps it exact.

    Integers become decimal strings, bytes become 0x-prefixed lowercase hex,
    addresses use EIP-55 case, and arrays and tuples become lists.
    """
    if abi_type.endswith("]"):
        element_type = abi_type[: abi_type.rindex("[")]
        return [to_json_value(element_type, item) for item in value]
    if abi_type == "address":
        return _checksum_address(value)
    if abi_type == "bool":
        return bool(value)
    if abi_type == "string":
        return str(value)
    if abi_type.startswith(("uint", "int")):
        return str(int(value))
    if abi_type.startswith("bytes"):
        return "0x" + bytes(value).hex()
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [str(item) if isinstance(item, int) else item for item in value]
    return value


def to_json_arguments(inputs: Sequence[Mapping[str, Any]], values: Sequence[Any]) -> dict[str, Any]:
    """Pair ABI inputs with decoded values into a JSON object keyed by argument name."""
    return {
        _argument_name(item, index): to_json_value(item["type"], value)
        for index, (item, value) in enumerate(zip(inputs, values, strict=True))
    }


def format_yuan(fen: int) -> str:
    """Format fen as currency units with thousands separators, such as "1,500,000.00"."""
    sign = "-" if fen < 0 else ""
    units, cents = divmod(abs(fen), FEN_PER_UNIT)
    return f"{sign}{units:,}.{cents:02d}"


def day_to_date(day_number: int) -> date:
    """Return the calendar date of a China Standard Time day number.

    Raises OverflowError for day numbers beyond the year 9999.
    """
    return _EPOCH + timedelta(days=day_number)


def date_to_day(day: date) -> int:
    """Return the China Standard Time day number of a calendar date: days since 1970-01-01."""
    return (day - _EPOCH).days


def format_day(day_number: int) -> str:
    """Format a China Standard Time day number as an ISO date, such as "2026-12-04"."""
    try:
        return day_to_date(day_number).isoformat()
    except OverflowError:
        return f"day {day_number}"


def describe_argument(name: str, internal_type: str, abi_type: str, value: Any) -> str:
    """Render one decoded argument for a message in words: amounts, dates, enums, roles."""
    if name in AMOUNT_ARGUMENT_NAMES and isinstance(value, int):
        return format_yuan(value)
    if name in DAY_ARGUMENT_NAMES and isinstance(value, int):
        return format_day(value)
    members = ENUM_MEMBERS.get(internal_type)
    if members is not None and isinstance(value, int) and value < len(members):
        return members[value]
    if abi_type == "bytes32" and isinstance(value, bytes) and value in ROLE_NAMES:
        return ROLE_NAMES[value]
    if abi_type == "bool":
        return "yes" if value else "no"
    json_value = to_json_value(abi_type, value)
    return json_value if isinstance(json_value, str) else repr(json_value)


def _argument_name(item: Mapping[str, Any], index: int) -> str:
    return item.get("name") or f"arg{index}"
