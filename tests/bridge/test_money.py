"""Amounts, addresses and hashes as the API parses and formats them."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from ledger_bridge.core.errors import InvalidAddressError, InvalidAmountError, InvalidHashError
from ledger_bridge.money import (
    MAX_AMOUNT_FEN,
    Address,
    AmountOut,
    AmountStr,
    Bytes32Hex,
    NonNegativeAmountStr,
    format_amount,
    parse_address,
    parse_amount,
    parse_bytes32_hex,
)

MAX_AMOUNT_TEXT = "3402823669209384634633746074317682114.55"

ACCEPTED_AMOUNTS = [
    ("2500000.00", 250_000_000),
    ("2500000", 250_000_000),
    ("2500000.5", 250_000_050),
    ("0.01", 1),
    ("0.1", 10),
    ("1", 100),
    ("10.05", 1005),
    (MAX_AMOUNT_TEXT, MAX_AMOUNT_FEN),
]

REJECTED_AMOUNTS = [
    (2500000, "JSON number"),
    (2500000.0, "JSON number"),
    (0.1, "JSON number"),
    (True, "JSON boolean"),
    (None, "not a string"),
    (["1.00"], "not a string"),
    ("", "is empty"),
    (" 1.00", "whitespace"),
    ("1.00 ", "whitespace"),
    ("1 000.00", "whitespace"),
    ("1.00\n", "whitespace"),
    ("-1.00", "negative"),
    ("-0.01", "negative"),
    ("+1.00", "leading '+'"),
    ("1e3", "exponent"),
    ("1E3", "exponent"),
    ("1.5e2", "exponent"),
    ("NaN", "not a finite number"),
    ("nan", "not a finite number"),
    ("Infinity", "not a finite number"),
    ("-Infinity", "not a finite number"),
    ("inf", "not a finite number"),
    ("1.001", "more than two decimals"),
    ("1.000", "more than two decimals"),
    ("01.00", "leading zero"),
    ("00", "leading zero"),
    ("1.", "not a plain decimal"),
    (".50", "not a plain decimal"),
    ("1,000.00", "not a plain decimal"),
    ("0x10", "not a plain decimal"),
    ("１", "not a plain decimal"),
    ("1_000", "not a plain decimal"),
    ("0", "is zero"),
    ("0.00", "is zero"),
    ("3402823669209384634633746074317682114.56", "above the maximum"),
    ("9" * 60, "above the maximum"),
    ("1" * 101, "longer than"),
]


@pytest.mark.parametrize(("text", "fen"), ACCEPTED_AMOUNTS, ids=[a for a, _ in ACCEPTED_AMOUNTS])
def test_parse_amount_accepts(text: str, fen: int) -> None:
    assert parse_amount(text) == fen


@pytest.mark.parametrize(
    ("value", "reason"), REJECTED_AMOUNTS, ids=[repr(value) for value, _ in REJECTED_AMOUNTS]
)
def test_parse_amount_rejects(value: object, reason: str) -> None:
    with pytest.raises(InvalidAmountError) as caught:
        parse_amount(value)

    message = str(caught.value)
    assert reason in message
    assert '"2500000.00"' in message


def test_parse_amount_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_amount("abc")


@pytest.mark.parametrize("text", ["0", "0.0", "0.00"])
def test_parse_amount_allows_zero_when_asked(text: str) -> None:
    assert parse_amount(text, allow_zero=True) == 0


def test_parse_amount_names_value_in_message() -> None:
    with pytest.raises(InvalidAmountError, match=r"'12\.345'"):
        parse_amount("12.345")


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (0, "0.00"),
        (1, "0.01"),
        (10, "0.10"),
        (250_000_000, "2500000.00"),
        (MAX_AMOUNT_FEN, MAX_AMOUNT_TEXT),
    ],
)
def test_format_amount(fen: int, text: str) -> None:
    assert format_amount(fen) == text
    assert parse_amount(text, allow_zero=True) == fen


@pytest.mark.parametrize("value", [-1, 1.0, "1", True])
def test_format_amount_rejects_non_fen(value: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        format_amount(value)  # type: ignore[arg-type]


class Drawdown(BaseModel):
    amount: AmountStr
    fee: NonNegativeAmountStr


class Balance(BaseModel):
    principal: AmountOut


def test_amount_str_validates_to_fen() -> None:
    drawdown = Drawdown.model_validate({"amount": "2500000.00", "fee": "0"})

    assert drawdown.amount == 250_000_000
    assert drawdown.fee == 0


def test_amount_str_serialises_to_decimal_string() -> None:
    drawdown = Drawdown.model_validate_json('{"amount": "12.5", "fee": "0.00"}')

    assert drawdown.model_dump(mode="json") == {"amount": "12.50", "fee": "0.00"}


@pytest.mark.parametrize("body", ['{"amount": 12.5, "fee": "0"}', '{"amount": 12, "fee": "0"}'])
def test_amount_str_rejects_json_numbers(body: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Drawdown.model_validate_json(body)

    error = caught.value.errors()[0]
    assert error["loc"] == ("amount",)
    assert error["type"] == "invalid-amount"
    assert "JSON number" in error["msg"]


def test_amount_str_rejects_zero() -> None:
    with pytest.raises(ValidationError, match="is zero"):
        Drawdown.model_validate({"amount": "0", "fee": "0"})


def test_amount_out_serialises_fen_as_string() -> None:
    assert Balance(principal=250_000_001).model_dump_json() == '{"principal":"2500000.01"}'


@pytest.mark.parametrize("value", [-1, MAX_AMOUNT_FEN + 1, 1.5, "100"])
def test_amount_out_rejects_non_fen(value: object) -> None:
    with pytest.raises(ValidationError):
        Balance(principal=value)  # type: ignore[arg-type]


def test_amount_json_schema_is_string() -> None:
    schema = Drawdown.model_json_schema()["properties"]["amount"]

    assert schema["type"] == "string"
    assert schema["examples"] == ["2500000.00"]


CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


@pytest.mark.parametrize(
    "value",
    [CHECKSUMMED, CHECKSUMMED.lower(), "0x" + CHECKSUMMED[2:].upper()],
    ids=["checksummed", "lowercase", "uppercase"],
)
def test_parse_address_normalises_to_checksum(value: str) -> None:
    assert parse_address(value) == CHECKSUMMED


REJECTED_ADDRESSES = [
    ("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", "EIP-55 checksum"),
    ("0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "EIP-55 checksum"),
    (CHECKSUMMED[2:], "does not start with '0x'"),
    ("0X" + CHECKSUMMED[2:], "does not start with '0x'"),
    (CHECKSUMMED[:-1], "39 hex digits instead of 40"),
    (CHECKSUMMED + "0", "41 hex digits instead of 40"),
    ("0x" + "g" * 40, "not hex digits"),
    ("0x" + "0" * 40, "zero address"),
    (12345, "not a string"),
    (None, "not a string"),
]


@pytest.mark.parametrize(
    ("value", "reason"), REJECTED_ADDRESSES, ids=[repr(value) for value, _ in REJECTED_ADDRESSES]
)
def test_parse_address_rejects(value: object, reason: str) -> None:
    with pytest.raises(InvalidAddressError) as caught:
        parse_address(value)

    assert reason in str(caught.value)
    assert "EIP-55 checksum case" in str(caught.value)


def test_parse_address_bad_checksum_names_value() -> None:
    bad = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"

    with pytest.raises(InvalidAddressError) as caught:
        parse_address(bad)

    assert bad in str(caught.value)
    assert CHECKSUMMED not in str(caught.value)


def test_parse_address_allows_zero_when_asked() -> None:
    assert parse_address("0x" + "0" * 40, allow_zero=True) == "0x" + "0" * 40


class Payment(BaseModel):
    payee: Address
    invoice_hash: Bytes32Hex


def test_address_type_in_model() -> None:
    payment = Payment(payee=CHECKSUMMED.lower(), invoice_hash="0x" + "AB" * 32)

    assert payment.payee == CHECKSUMMED
    assert payment.invoice_hash == "0x" + "ab" * 32


def test_address_type_error_message_reaches_validation_error() -> None:
    with pytest.raises(ValidationError) as caught:
        Payment(payee="0x1234", invoice_hash="0x" + "ab" * 32)

    error = caught.value.errors()[0]
    assert error["loc"] == ("payee",)
    assert error["msg"].startswith("Value '0x1234' is invalid because it has 4 hex digits")


REJECTED_HASHES = [
    ("ab" * 32, "does not start with '0x'"),
    ("0x" + "ab" * 31, "62 hex digits instead of 64"),
    ("0x" + "ab" * 33, "66 hex digits instead of 64"),
    ("0x" + "zz" * 32, "not hex digits"),
    ("0x" + "00" * 32, "all zeros"),
    (b"\xab" * 32, "not a string"),
]


@pytest.mark.parametrize(
    ("value", "reason"), REJECTED_HASHES, ids=[repr(value)[:20] for value, _ in REJECTED_HASHES]
)
def test_parse_bytes32_hex_rejects(value: object, reason: str) -> None:
    with pytest.raises(InvalidHashError) as caught:
        parse_bytes32_hex(value)

    assert reason in str(caught.value)


def test_parse_bytes32_hex_lowercases() -> None:
    assert parse_bytes32_hex("0x" + "Ab" * 32) == "0x" + "ab" * 32
