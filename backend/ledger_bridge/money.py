"""Amounts, addresses and hashes as the API accepts and returns them.

On chain every amount is an integer count of fen (0.01 of the currency unit,
because the settlement token has 2 decimals). The API carries amounts as decimal
strings such as "2500000.00" so that no JSON parser turns them into floats.
`parse_amount` and `format_amount` convert between the two forms, and the
annotated types below let Pydantic models do the same at their boundary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from eth_utils import to_checksum_address
from pydantic import PlainSerializer, PlainValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from ledger_bridge.core.errors import (
    InvalidAddressError,
    InvalidAmountError,
    InvalidHashError,
    InvalidValueError,
)

FEN_PER_UNIT = 100
# The contracts store amounts as uint128.
MAX_AMOUNT_FEN = 2**128 - 1

_AMOUNT_PATTERN = re.compile(r"(?P<units>0|[1-9][0-9]*)(?:\.(?P<fraction>[0-9]{1,2}))?")
_AMOUNT_JSON_PATTERN = r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$"
# Guards the regex and int() against huge inputs. Valid amounts have at most 40 characters.
_MAX_AMOUNT_LENGTH = 100
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}

_HEX_DIGITS = re.compile(r"[0-9a-fA-F]+")
_ZERO_ADDRESS = "0x" + "0" * 40


def parse_amount(value: object, *, allow_zero: bool = False) -> int:
    """Convert a decimal string such as "2500000.00" into an integer count of fen.

    Raises InvalidAmountError for anything but a plain non-negative decimal
    string with at most two decimals that fits in uint128, and for zero
    unless `allow_zero` is set.
    """
    if not isinstance(value, str):
        raise InvalidAmountError(value, _reason_not_string(value))
    text = value
    if len(text) > _MAX_AMOUNT_LENGTH:
        raise InvalidAmountError(value, f"is longer than {_MAX_AMOUNT_LENGTH} characters")
    match = _AMOUNT_PATTERN.fullmatch(text)
    if match is None:
        raise InvalidAmountError(value, _reason_malformed(text))
    fraction = (match["fraction"] or "").ljust(2, "0")
    fen = int(match["units"]) * FEN_PER_UNIT + int(fraction)
    if fen == 0 and not allow_zero:
        raise InvalidAmountError(value, "is zero, and this amount must be at least 0.01")
    if fen > MAX_AMOUNT_FEN:
        raise InvalidAmountError(
            value, f"is above the maximum of {format_amount(MAX_AMOUNT_FEN)} (uint128 fen)"
        )
    return fen


def format_amount(fen: int) -> str:
    """Format an integer count of fen as a decimal string with two decimals."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"format_amount expects an int count of fen, not {type(fen).__name__}")
    if fen < 0:
        raise ValueError(f"format_amount expects a non-negative count of fen, not {fen}")
    units, cents = divmod(fen, FEN_PER_UNIT)
    return f"{units}.{cents:02d}"


def _reason_not_string(value: object) -> str:
    if isinstance(value, bool):
        return "is a JSON boolean, not a string"
    if isinstance(value, int | float):
        return "is a JSON number, which parsers may round, so amounts must be strings"
    return "is not a string"


def _reason_malformed(text: str) -> str:
    """Name the first rule that a string failing _AMOUNT_PATTERN breaks."""
    if text == "":
        return "is empty"
    if any(character.isspace() for character in text):
        return "contains whitespace"
    if text.lower() in _NON_FINITE:
        return "is not a finite number"
    if text.startswith("-"):
        return "is negative"
    if text.startswith("+"):
        return "has a leading '+' sign"
    if "e" in text.lower():
        return "uses exponent notation"
    if re.fullmatch(r"[0-9]+\.[0-9]{3,}", text):
        return "has more than two decimals, and the smallest unit is 0.01"
    if re.fullmatch(r"0[0-9]+(\.[0-9]*)?", text):
        return "has a leading zero"
    return "is not a plain decimal number of digits with an optional '.' and 1 or 2 decimals"


def parse_address(value: object, *, allow_zero: bool = False) -> str:
    """Return an Ethereum address in EIP-55 checksum case.

    An all-lowercase or all-uppercase address is accepted as it is. A
    mixed-case address must already carry a valid EIP-55 checksum, because
    mixed case that does not match usually means a mistyped address.
    """
    if not isinstance(value, str):
        raise InvalidAddressError(value, "is not a string")
    if not value.startswith("0x"):
        raise InvalidAddressError(value, "does not start with '0x'")
    digits = value[2:]
    if len(digits) != 40:
        raise InvalidAddressError(value, f"has {len(digits)} hex digits instead of 40")
    if _HEX_DIGITS.fullmatch(digits) is None:
        raise InvalidAddressError(value, "contains characters that are not hex digits")
    checksummed = to_checksum_address(value)
    is_single_case = digits == digits.lower() or digits == digits.upper()
    if not is_single_case and value != checksummed:
        raise InvalidAddressError(
            value, "mixes upper and lower case but fails the EIP-55 checksum, so it may be mistyped"
        )
    if checksummed == _ZERO_ADDRESS and not allow_zero:
        raise InvalidAddressError(value, "is the zero address, which no account controls")
    return checksummed


def parse_bytes32_hex(value: object, *, allow_zero: bool = False) -> str:
    """Return a 32-byte hash as lowercase "0x" followed by 64 hex digits."""
    if not isinstance(value, str):
        raise InvalidHashError(value, "is not a string")
    if not value.startswith("0x"):
        raise InvalidHashError(value, "does not start with '0x'")
    digits = value[2:]
    if len(digits) != 64:
        raise InvalidHashError(value, f"has {len(digits)} hex digits instead of 64")
    if _HEX_DIGITS.fullmatch(digits) is None:
        raise InvalidHashError(value, "contains characters that are not hex digits")
    if int(digits, 16) == 0 and not allow_zero:
        raise InvalidHashError(value, "is all zeros, which is not the hash of any document")
    return "0x" + digits.lower()


def _pydantic_validator(parse: Callable[..., Any], **options: Any) -> PlainValidator:
    """Wrap a parse function so its error message reaches the API response unchanged."""

    def validate(value: object) -> Any:
        try:
            return parse(value, **options)
        except InvalidValueError as error:
            raise PydanticCustomError(error.slug, error.message) from error

    return PlainValidator(validate)


def _serialize_amount(fen: int) -> str:
    return format_amount(fen)


_AMOUNT_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": _AMOUNT_JSON_PATTERN,
        "examples": ["2500000.00"],
        "description": "Amount in currency units with at most two decimals (fen).",
    }
)

AmountStr = Annotated[
    int,
    _pydantic_validator(parse_amount, allow_zero=False),
    PlainSerializer(_serialize_amount, return_type=str, when_used="json"),
    _AMOUNT_SCHEMA,
]
"""Request field: a positive decimal string, validated into an int of fen."""

NonNegativeAmountStr = Annotated[
    int,
    _pydantic_validator(parse_amount, allow_zero=True),
    PlainSerializer(_serialize_amount, return_type=str, when_used="json"),
    _AMOUNT_SCHEMA,
]
"""Request field like AmountStr that also accepts "0" and "0.00"."""


def _validate_fen(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("fen_type", "Amount must be an int count of fen")
    if not 0 <= value <= MAX_AMOUNT_FEN:
        raise PydanticCustomError(
            "fen_range", "Amount {value} is outside 0..uint128 max", {"value": value}
        )
    return value


AmountOut = Annotated[
    int,
    PlainValidator(_validate_fen),
    PlainSerializer(_serialize_amount, return_type=str, when_used="json"),
    _AMOUNT_SCHEMA,
]
"""Response field: an int of fen that serialises to a decimal string such as "2500000.00"."""

Address = Annotated[
    str,
    _pydantic_validator(parse_address),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^0x[0-9a-fA-F]{40}$",
            "examples": ["0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
            "description": "Ethereum address; returned in EIP-55 checksum case.",
        }
    ),
]
"""An Ethereum address other than zero, normalised to EIP-55 checksum case."""

Bytes32Hex = Annotated[
    str,
    _pydantic_validator(parse_bytes32_hex),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^0x[0-9a-fA-F]{64}$",
            "examples": ["0x" + "ab" * 32],
            "description": "keccak256 hash of a document kept off chain; returned in lowercase.",
        }
    ),
]
"""A non-zero 32-byte hash, normalised to lowercase hex."""
