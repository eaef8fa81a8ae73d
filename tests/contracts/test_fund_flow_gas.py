"""Gas used by the two common payout paths, printed for the benchmark record (run with `-s`).

The figures are recorded, not asserted: they change with the compiler settings and the code.
"""

from datetime import date

from eth_utils import keccak

LIMIT_FEN = 3_000_000_000  # 30,000,000.00
RATE_BPS = 435
OPENED = date(2027, 8, 2)
MATURITY = date(2028, 8, 1)
DRAWDOWN_DAY = date(2027, 8, 3)
ENTRUSTED_FEN = 150_000_000  # 1,500,000.00
LOCKED_FEN = 50_000_000  # 500,000.00
PAYOUT_FEN = 10_000_000  # 100,000.00

ZERO_ADDRESS = "0x" + "00" * 20
NO_INVOICE = b"\x00" * 32


def test_gas_entrustedDrawdownAndPayFromLocked(
    facility, token, operator, open_line, travel, registered_payees, request_id
):
    line_id = open_line(LIMIT_FEN, RATE_BPS, OPENED, MATURITY)
    travel(DRAWDOWN_DAY)
    payee = registered_payees[0]
    # Warm the line (principal, interest cursor) and give the payee a token balance first, so
    # the measured calls write to storage slots that are already non-zero.
    facility.drawdown(
        request_id(), line_id, ENTRUSTED_FEN, payee, keccak(b"invoice 1"), sender=operator
    )
    locked = facility.drawdown(
        request_id(), line_id, LOCKED_FEN, ZERO_ADDRESS, NO_INVOICE, sender=operator
    )
    drawdown_id = locked.events.filter(facility.FundsLocked)[0].drawdownId
    facility.payFromLocked(
        request_id(), drawdown_id, payee, PAYOUT_FEN, keccak(b"invoice 2"), sender=operator
    )
    assert token.balanceOf(payee) > 0

    entrusted = facility.drawdown(
        request_id(), line_id, ENTRUSTED_FEN, payee, keccak(b"invoice 3"), sender=operator
    )
    paid = facility.payFromLocked(
        request_id(), drawdown_id, payee, PAYOUT_FEN, keccak(b"invoice 4"), sender=operator
    )
    batch = facility.payFromLockedBatch(
        request_id(),
        [(drawdown_id, payee, PAYOUT_FEN, keccak(f"invoice {i}".encode())) for i in (5, 6, 7)],
        sender=operator,
    )

    assert len(entrusted.events.filter(facility.PayoutMade)) == 1
    assert len(paid.events.filter(facility.PayoutMade)) == 1
    assert len(batch.events.filter(facility.PayoutMade)) == 3
    print()
    print(f"gas: entrusted drawdown, warm line, payee holds tokens: {entrusted.gas_used}")
    print(f"gas: payFromLocked, payee holds tokens: {paid.gas_used}")
    print(f"gas: payFromLockedBatch of 3 payouts to one payee: {batch.gas_used}")
