"""Revert data decoded with the shipped ABIs into error names, exact arguments and words."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak

from ledger_bridge.chain.errors import decode_revert


def revert_data(signature: str, types: list[str], values: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


DECODING_CASES = [
    pytest.param(
        revert_data(
            "CreditLimitExceeded(uint64,uint128,uint128)",
            ["uint64", "uint128", "uint128"],
            [3, 150_000_000, 200_000_000],
        ),
        "CreditLimitExceeded",
        {"lineId": "3", "available": "150000000", "requested": "200000000"},
        "CreditLimitExceeded: line 3 has 1,500,000.00 available, 2,000,000.00 requested",
        id="limit-exceeded",
    ),
    pytest.param(
        revert_data("CreditLineStatusInvalid(uint64,uint8)", ["uint64", "uint8"], [7, 7]),
        "CreditLineStatusInvalid",
        {"lineId": "7", "status": "7"},
        "CreditLineStatusInvalid: line 7 is Closed, which does not allow this action",
        id="enum-by-name",
    ),
    pytest.param(
        revert_data(
            "CreditLinePastMaturity(uint64,uint32,uint32)",
            ["uint64", "uint32", "uint32"],
            [2, 20_454, 20_455],
        ),
        "CreditLinePastMaturity",
        {"lineId": "2", "maturityDay": "20454", "today": "20455"},
        "CreditLinePastMaturity: line 2 matured on 2026-01-01 and today is 2026-01-02",
        id="days-as-dates",
    ),
    pytest.param(
        revert_data(
            "AccessControlUnauthorizedAccount(address,bytes32)",
            ["address", "bytes32"],
            ["0x" + "11" * 20, keccak(text="OPERATOR_ROLE")],
        ),
        "AccessControlUnauthorizedAccount",
        {
            "account": "0x1111111111111111111111111111111111111111",
            "neededRole": "0x" + keccak(text="OPERATOR_ROLE").hex(),
        },
        "AccessControlUnauthorizedAccount: account 0x1111111111111111111111111111111111111111 "
        "does not have the role OPERATOR_ROLE",
        id="role-by-name",
    ),
    pytest.param(
        revert_data("Error(string)", ["string"], ["plain reason"]),
        "Error",
        {"message": "plain reason"},
        "Error: plain reason",
        id="error-string",
    ),
]


@pytest.mark.parametrize(("data", "error", "args", "message"), DECODING_CASES)
def test_decode_revert_names_error_in_words(
    data: bytes, error: str, args: dict[str, str], message: str
) -> None:
    decoded = decode_revert("0x" + data.hex())

    assert decoded.error == error
    assert decoded.args == args
    assert decoded.message == message


def test_decode_revert_without_data() -> None:
    decoded = decode_revert(None)

    assert decoded.error == "Reverted"
    assert decoded.args == {}


def test_decode_revert_unknown_selector_keeps_data() -> None:
    decoded = decode_revert("0xdeadbeef0001")

    assert decoded.error == "UnknownError"
    assert decoded.args == {"data": "0xdeadbeef0001"}
    assert "0xdeadbeef" in decoded.message
