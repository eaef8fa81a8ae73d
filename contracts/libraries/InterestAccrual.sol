// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {CreditCalendar} from "./CreditCalendar.sol";

/**
 * @title InterestAccrual
 * @notice Lazy, path-independent interest for one line, computed day by day in whole segments.
 *
 * `accrued` counts interest in units of 1/ACCRUAL_SCALE fen, so that every day's interest is exact:
 * principal (fen) x rate (bps) x markup factor (percent) x days, over 360 x 10,000 x 100. Nothing is
 * rounded until a settlement or a payoff, which round half-up to the fen.
 *
 * `cursorDay` is the first day whose end-of-day balance has not been accrued yet; the start-of-day
 * events of `cursorDay` (a rate change, interest falling overdue, a settlement) have been applied.
 */
library InterestAccrual {
    uint256 internal constant ACCRUAL_SCALE = 360 * 10_000 * 100;
    uint256 private constant HALF_SCALE = ACCRUAL_SCALE / 2;

    struct State {
        uint128 principal;
        uint128 accrued;
        uint128 interestDue;
        uint128 overdueInterest;
        uint32 cursorDay;
        uint32 dueDay;
        uint32 maturityDay;
        uint32 nextRateDay;
        uint16 rateBps;
        uint16 nextRateBps;
    }

    /// @notice What one step changed, for the caller to record as events.
    struct StepResult {
        uint128 becameOverdue;
        uint32 overdueFromDueDay;
        bool settled;
        uint128 settledAmount;
    }

    /// @notice How a payment was split, in the order it was applied.
    struct Allocation {
        uint128 overdueInterest;
        uint128 interestDue;
        uint128 principal;
        uint128 accrued;
    }

    /// @notice The settlement parameters fixed for a facility.
    struct Terms {
        uint8 settlementDayOfMonth;
        uint16 penaltyMarkupPct;
    }

    /**
     * @notice Accrues the days from `cursorDay` up to the next day on which something changes (or `day`,
     * whichever is first), then applies that day's start-of-day events.
     */
    function step(State memory state, uint32 day, Terms memory terms) internal pure returns (StepResult memory result) {
        uint32 settlementDay = CreditCalendar.nextSettlementDay(state.cursorDay, terms.settlementDayOfMonth);
        uint32 boundary = _nextBoundary(state, day, settlementDay);

        state.accrued += _interestFor(state, terms, boundary - state.cursorDay);
        state.cursorDay = boundary;

        if (state.nextRateDay != 0 && boundary >= state.nextRateDay) {
            state.rateBps = state.nextRateBps;
            state.nextRateDay = 0;
            state.nextRateBps = 0;
        }
        if (state.interestDue != 0 && boundary > state.dueDay) {
            result.becameOverdue = state.interestDue;
            result.overdueFromDueDay = state.dueDay;
            state.overdueInterest += state.interestDue;
            state.interestDue = 0;
        }
        if (boundary == settlementDay) {
            result.settled = true;
            result.settledAmount = roundToFen(state.accrued);
            state.interestDue += result.settledAmount;
            state.accrued = 0;
            state.dueDay = boundary;
        }
    }

    /// @notice Brings the state up to the start of `day` without recording anything.
    function advance(State memory state, uint32 day, Terms memory terms) internal pure {
        while (state.cursorDay < day) {
            step(state, day, terms);
        }
    }

    /// @notice Rounds an accrual in 1/ACCRUAL_SCALE fen half-up to whole fen.
    function roundToFen(uint256 accrued) internal pure returns (uint128) {
        return SafeCast.toUint128((accrued + HALF_SCALE) / ACCRUAL_SCALE);
    }

    /// @notice Everything owed at the cursor day: overdue, due, principal and the running period rounded.
    function owed(State memory state) internal pure returns (uint128) {
        return state.overdueInterest + state.interestDue + state.principal + roundToFen(state.accrued);
    }

    /**
     * @notice Applies a payment: overdue interest, then interest due, then principal, then the running
     * period's accrued interest. The caller has checked that `amount` is at most {owed}.
     */
    function applyPayment(State memory state, uint128 amount) internal pure returns (Allocation memory paid) {
        // Only a payment of everything owed may drop the sub-fen rest of the accrual. A partial payment
        // that leaves nothing for the accrual must keep it, even when it rounds to zero.
        bool paysAll = amount == owed(state);
        uint128 remaining = amount;
        paid.overdueInterest = _min(remaining, state.overdueInterest);
        state.overdueInterest -= paid.overdueInterest;
        remaining -= paid.overdueInterest;

        paid.interestDue = _min(remaining, state.interestDue);
        state.interestDue -= paid.interestDue;
        remaining -= paid.interestDue;

        paid.principal = _min(remaining, state.principal);
        state.principal -= paid.principal;
        remaining -= paid.principal;

        paid.accrued = remaining;
        if (paysAll) {
            state.accrued = 0;
        } else {
            // The rest is below the rounded accrual, so it is at most accrued - HALF_SCALE fen-units.
            state.accrued -= remaining * uint128(ACCRUAL_SCALE);
        }
    }

    function _nextBoundary(State memory state, uint32 day, uint32 settlementDay) private pure returns (uint32 boundary) {
        boundary = settlementDay < day ? settlementDay : day;
        if (state.interestDue != 0 && state.dueDay + 1 < boundary) {
            boundary = state.dueDay + 1;
        }
        if (state.maturityDay >= state.cursorDay && state.maturityDay + 1 < boundary) {
            boundary = state.maturityDay + 1;
        }
        if (state.nextRateDay > state.cursorDay && state.nextRateDay < boundary) {
            boundary = state.nextRateDay;
        }
    }

    /// @dev The segment never crosses the penalty start, so one factor holds for all of its days.
    function _interestFor(State memory state, Terms memory terms, uint32 days_) private pure returns (uint128) {
        uint256 markupPct = state.cursorDay > state.maturityDay ? 100 + uint256(terms.penaltyMarkupPct) : 100;
        uint256 base = uint256(state.principal) + state.overdueInterest;
        return SafeCast.toUint128(base * state.rateBps * markupPct * days_);
    }

    function _min(uint128 a, uint128 b) private pure returns (uint128) {
        return a < b ? a : b;
    }
}
