"""Shared credit pools: every member's drawdown must fit its own line and the pool's room.

Scenario D runs here: four textile firms share a pool of 20,000,000.00 from 2027-03-01.
"""

from datetime import date

import pytest
from conftest import day_number, reverts_with
from eth_utils import keccak, to_checksum_address
from modelled_line import fen

CREATED = date(2027, 3, 1)
MATURITY = date(2028, 2, 29)
POOL_LIMIT_FEN = fen("20,000,000.00")
MEMBER_LIMIT_FEN = fen("8,000,000.00")
MEMBER_RATE_BPS = 380
FIRMS = [to_checksum_address("0x" + f"{n:02x}" * 20) for n in (0xB1, 0xB2, 0xB3, 0xB4)]


@pytest.fixture
def pool_id(facility, officer, travel_to_day, request_id) -> int:
    travel_to_day(CREATED)
    receipt = facility.createPool(request_id(), POOL_LIMIT_FEN, sender=officer)
    return receipt.events[0].poolId


@pytest.fixture
def members(facility, modelled_line, pool_id, officer, request_id) -> list:
    """Four lines of 8,000,000.00 at 3.80%, one per firm, all in the pool."""
    lines = []
    for firm in FIRMS:
        line = modelled_line(
            MEMBER_LIMIT_FEN, MEMBER_RATE_BPS, CREATED, MATURITY, borrower_address=firm
        )
        facility.addPoolMember(request_id(), pool_id, line.line_id, sender=officer)
        lines.append(line)
    return lines


def pool_used(facility, pool_id: int) -> int:
    _, used = facility.pool(pool_id)
    return used


def test_cluster_pool_shares_limit(facility, pool_id, members, officer, request_id):
    first, second, third, fourth = members
    day = date(2027, 3, 2)
    first.draw(day, fen("8,000,000.00"))
    second.draw(day, fen("7,000,000.00"))
    third.draw(day, fen("5,000,000.00"))
    assert facility.pool(pool_id) == (POOL_LIMIT_FEN, POOL_LIMIT_FEN)

    with reverts_with(
        facility.CreditPoolLimitExceeded,
        poolId=pool_id,
        lineId=fourth.line_id,
        poolRoom=0,
        requested=fen("1.00"),
    ):
        fourth.draw(day, fen("1.00"))
    fourth_state = fourth.state()
    assert fourth_state.limit - fourth_state.principal == fen("8,000,000.00")
    assert fourth_state.available == 0

    second.repay(date(2027, 3, 10), fen("3,000,000.00"))
    assert pool_used(facility, pool_id) == fen("17,000,000.00")
    fourth.draw(date(2027, 3, 10), fen("3,000,000.00"))
    assert pool_used(facility, pool_id) == POOL_LIMIT_FEN

    third.move_to(date(2027, 3, 15))
    removal_request = request_id()
    receipt = facility.removePoolMember(removal_request, third.line_id, sender=officer)
    [removed] = facility.PoolMemberRemoved.from_receipt(receipt)
    assert (removed.poolId, removed.lineId, removed.requestId) == (
        pool_id,
        third.line_id,
        removal_request,
    )
    assert removed.poolUsedAfter == fen("15,000,000.00")
    assert third.state().principal == fen("5,000,000.00")
    assert third.state().poolId == 0

    fourth.draw(date(2027, 3, 15), fen("5,000,000.00"))
    third.draw(date(2027, 3, 15), fen("1,000,000.00"))

    assert fourth.state().principal == MEMBER_LIMIT_FEN
    assert fourth.state().available == 0
    assert third.state().principal == fen("6,000,000.00")
    assert facility.pool(pool_id) == (POOL_LIMIT_FEN, POOL_LIMIT_FEN)
    for line in members:
        line.assert_matches_model(date(2027, 3, 21))


def test_create_pool_records_limit(facility, officer, request_id):
    create_request = request_id()

    receipt = facility.createPool(create_request, POOL_LIMIT_FEN, sender=officer)

    [created] = facility.PoolCreated.from_receipt(receipt)
    assert created.requestId == create_request
    assert created.limit == POOL_LIMIT_FEN
    assert facility.pool(created.poolId) == (POOL_LIMIT_FEN, 0)


def test_create_pool_reverts_for_operator(facility, operator, request_id):
    with reverts_with(
        facility.AccessControlUnauthorizedAccount,
        account=operator,
        neededRole=facility.CREDIT_OFFICER_ROLE(),
    ):
        facility.createPool(request_id(), POOL_LIMIT_FEN, sender=operator)


def test_create_pool_reverts_for_zero_limit(facility, officer, request_id):
    with reverts_with(facility.CreditAmountZero):
        facility.createPool(request_id(), 0, sender=officer)


def test_add_member_counts_its_principal(facility, pool_id, modelled_line, officer, request_id):
    line = modelled_line(MEMBER_LIMIT_FEN, MEMBER_RATE_BPS, CREATED, MATURITY)
    line.draw(CREATED, fen("2,000,000.00"))
    add_request = request_id()

    receipt = facility.addPoolMember(add_request, pool_id, line.line_id, sender=officer)

    [added] = facility.PoolMemberAdded.from_receipt(receipt)
    assert (added.poolId, added.lineId, added.requestId) == (pool_id, line.line_id, add_request)
    assert added.poolUsedAfter == fen("2,000,000.00")
    assert line.state().poolId == pool_id


def test_add_member_to_unknown_pool_reverts(facility, open_line, officer, request_id):
    line_id = open_line(MEMBER_LIMIT_FEN, MEMBER_RATE_BPS, CREATED, MATURITY)

    with reverts_with(facility.CreditPoolNotFound, poolId=77):
        facility.addPoolMember(request_id(), 77, line_id, sender=officer)


def test_add_member_twice_reverts(facility, pool_id, members, officer, request_id):
    with reverts_with(facility.CreditLineAlreadyInPool, lineId=members[0].line_id, poolId=pool_id):
        facility.addPoolMember(request_id(), pool_id, members[0].line_id, sender=officer)


def test_add_applied_line_reverts(facility, pool_id, operator, officer, borrower, request_id):
    receipt = facility.applyForLine(
        request_id(),
        borrower,
        keccak(b"application"),
        MEMBER_LIMIT_FEN,
        MEMBER_RATE_BPS,
        day_number(MATURITY),
        sender=operator,
    )
    line_id = receipt.events[0].lineId

    with reverts_with(facility.CreditLineStatusInvalid, lineId=line_id, status=1):
        facility.addPoolMember(request_id(), pool_id, line_id, sender=officer)


def test_remove_line_outside_pool_reverts(facility, open_line, officer, request_id):
    line_id = open_line(MEMBER_LIMIT_FEN, MEMBER_RATE_BPS, CREATED, MATURITY)

    with reverts_with(facility.CreditLineNotInPool, lineId=line_id):
        facility.removePoolMember(request_id(), line_id, sender=officer)


def test_line_limit_checked_before_pool(facility, pool_id, members):
    first, second, third, _ = members
    first.draw(CREATED, fen("8,000,000.00"))
    second.draw(CREATED, fen("8,000,000.00"))
    third.draw(CREATED, fen("3,000,000.00"))

    with reverts_with(
        facility.CreditLimitExceeded,
        lineId=third.line_id,
        available=fen("5,000,000.00"),
        requested=fen("6,000,000.00"),
    ):
        third.draw(CREATED, fen("6,000,000.00"))
    with reverts_with(
        facility.CreditPoolLimitExceeded,
        poolId=pool_id,
        lineId=third.line_id,
        poolRoom=fen("1,000,000.00"),
    ):
        third.draw(CREATED, fen("2,000,000.00"))


def test_lowered_pool_limit_blocks_drawdowns(facility, pool_id, members, officer, request_id):
    members[0].draw(CREATED, fen("6,000,000.00"))
    change_request = request_id()

    receipt = facility.changePoolLimit(change_request, pool_id, fen("5,000,000.00"), sender=officer)

    [changed] = facility.PoolLimitChanged.from_receipt(receipt)
    assert (changed.poolId, changed.requestId) == (pool_id, change_request)
    assert (changed.previousLimit, changed.limit) == (POOL_LIMIT_FEN, fen("5,000,000.00"))
    with reverts_with(
        facility.CreditPoolLimitExceeded, poolId=pool_id, lineId=members[1].line_id, poolRoom=0
    ):
        members[1].draw(CREATED, fen("1.00"))
    assert members[0].state().principal == fen("6,000,000.00")


def test_payoff_frees_pool_room(facility, pool_id, members):
    members[0].draw(CREATED, fen("6,000,000.00"))
    members[1].draw(CREATED, fen("4,000,000.00"))

    members[0].payoff(date(2027, 3, 9))

    assert pool_used(facility, pool_id) == fen("4,000,000.00")


def test_write_off_frees_pool_room(facility, pool_id, members, officer, request_id):
    first, second, third, fourth = members
    first.draw(CREATED, fen("8,000,000.00"))
    second.draw(CREATED, fen("8,000,000.00"))
    third.draw(CREATED, fen("4,000,000.00"))
    first.move_to(date(2027, 4, 1))

    facility.declareDefault(request_id(), first.line_id, sender=officer)
    facility.writeOff(request_id(), first.line_id, sender=officer)

    assert pool_used(facility, pool_id) == fen("12,000,000.00")
    fourth.draw(date(2027, 4, 1), fen("8,000,000.00"))
    assert pool_used(facility, pool_id) == POOL_LIMIT_FEN


def test_closed_member_leaves_pool(facility, pool_id, members, officer, request_id):
    members[0].draw(CREATED, fen("6,000,000.00"))
    members[0].payoff(date(2027, 3, 9))

    receipt = facility.closeLine(request_id(), members[0].line_id, sender=officer)

    [removed] = facility.PoolMemberRemoved.from_receipt(receipt)
    assert (removed.poolId, removed.lineId, removed.poolUsedAfter) == (
        pool_id,
        members[0].line_id,
        0,
    )
    assert members[0].state().poolId == 0
