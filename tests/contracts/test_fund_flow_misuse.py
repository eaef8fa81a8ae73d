"""The misuse the fund-flow lock exists for: credit money routed towards a crypto-asset exchange.

A borrower draws 500,000.00 self-directed, tries to send 200,000.00 of it to an exchange whose
category the regulator blocked, then pays 300,000.00 to two suppliers and returns the remaining
200,000.00 as repayment. Every fen must be accounted for afterwards.
"""

from datetime import date

from conftest import (
    CATEGORY_CRYPTO_EXCHANGE,
    CATEGORY_EQUIPMENT,
    CATEGORY_RAW_MATERIALS,
    reverts_with,
)
from eth_utils import keccak, to_checksum_address

LIMIT_FEN = 3_000_000_000  # 30,000,000.00
RATE_BPS = 435
OPENED = date(2027, 3, 1)
MATURITY = date(2028, 2, 28)
DRAWDOWN_DAY = date(2027, 3, 2)

DRAWN_FEN = 50_000_000  # 500,000.00
EXCHANGE_FEN = 20_000_000  # 200,000.00
SUPPLIER_EQUIPMENT_FEN = 18_000_000  # 180,000.00
SUPPLIER_MATERIALS_FEN = 12_000_000  # 120,000.00
RETURNED_FEN = 20_000_000  # 200,000.00

ZERO_ADDRESS = "0x" + "00" * 20
EXCHANGE_INVOICE = keccak(b"exchange deposit order")
EQUIPMENT_INVOICE = keccak(b"invoice: milling machine")
MATERIALS_INVOICE = keccak(b"invoice: steel coil")


def test_misuse_exchangeRejectedSuppliersPaidRestReturned(
    facility,
    token,
    rules,
    open_line,
    travel,
    operator,
    borrower,
    registered_payees,
    crypto_exchange,
    request_id,
):
    line_id = open_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    facility.setPayoutDelegate(request_id(), line_id, borrower, True, sender=operator)
    travel(DRAWDOWN_DAY)
    equipment_supplier = to_checksum_address(registered_payees[1])
    materials_supplier = to_checksum_address(registered_payees[2])
    facility_balance_before = token.balanceOf(facility)
    liquidity_before = facility.liquidity()

    drawn = facility.drawdown(
        request_id(), line_id, DRAWN_FEN, ZERO_ADDRESS, b"\x00" * 32, sender=operator
    )
    drawdown_id = drawn.events.filter(facility.FundsLocked)[0].drawdownId

    assert facility.lockedBalance(drawdown_id) == (line_id, DRAWN_FEN)
    assert token.balanceOf(facility) == facility_balance_before

    # The borrower tries to move part of the credit to the crypto-asset exchange.
    with reverts_with(
        rules.FundFlowCategoryBlocked, payee=crypto_exchange, category=CATEGORY_CRYPTO_EXCHANGE
    ):
        facility.payFromLocked(
            request_id(),
            drawdown_id,
            crypto_exchange,
            EXCHANGE_FEN,
            EXCHANGE_INVOICE,
            sender=borrower,
        )

    assert token.balanceOf(crypto_exchange) == 0
    assert facility.lockedBalance(drawdown_id).amount == DRAWN_FEN

    # It pays its suppliers instead and returns the rest.
    paid = facility.payFromLockedBatch(
        request_id(),
        [
            (drawdown_id, equipment_supplier, SUPPLIER_EQUIPMENT_FEN, EQUIPMENT_INVOICE),
            (drawdown_id, materials_supplier, SUPPLIER_MATERIALS_FEN, MATERIALS_INVOICE),
        ],
        sender=borrower,
    )
    returned = facility.repayFromLocked(request_id(), drawdown_id, RETURNED_FEN, sender=operator)

    payouts = paid.events.filter(facility.PayoutMade)
    assert [(p.payee, p.category, p.amount) for p in payouts] == [
        (equipment_supplier, CATEGORY_EQUIPMENT, SUPPLIER_EQUIPMENT_FEN),
        (materials_supplier, CATEGORY_RAW_MATERIALS, SUPPLIER_MATERIALS_FEN),
    ]
    assert [p.lockedAfter for p in payouts] == [
        DRAWN_FEN - SUPPLIER_EQUIPMENT_FEN,
        RETURNED_FEN,
    ]
    assert all(p.rulesVersion == rules.rulesVersion() for p in payouts)
    assert returned.events.filter(facility.LockedFundsReturned)[0].lockedAfter == 0
    repaid = returned.events.filter(facility.Repaid)[0]
    assert repaid.principalPaid == RETURNED_FEN

    # Nothing lost: the 500,000.00 drawn is the 300,000.00 paid plus the 200,000.00 returned.
    paid_fen = SUPPLIER_EQUIPMENT_FEN + SUPPLIER_MATERIALS_FEN
    assert paid_fen + RETURNED_FEN == DRAWN_FEN
    assert token.balanceOf(crypto_exchange) == 0
    assert token.balanceOf(equipment_supplier) == SUPPLIER_EQUIPMENT_FEN
    assert token.balanceOf(materials_supplier) == SUPPLIER_MATERIALS_FEN
    assert token.balanceOf(facility) == facility_balance_before - paid_fen
    assert facility.liquidity() == liquidity_before - paid_fen
    assert facility.totalLocked() == 0
    assert facility.lockedBalance(drawdown_id).amount == 0
    line = facility.lineState(line_id, facility.today())
    assert line.locked == 0
    assert line.principal == DRAWN_FEN - RETURNED_FEN
    assert token.balanceOf(facility) == facility.liquidity() + facility.totalLocked()
