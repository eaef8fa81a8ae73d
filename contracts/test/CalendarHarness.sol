// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CreditCalendar} from "../libraries/CreditCalendar.sol";

/// @notice Exposes CreditCalendar to tests, a range of days per call.
contract CalendarHarness {
    /// @notice Returns each day's date as year * 10000 + month * 100 + day, and its next settlement day.
    function describe(uint32 firstDay, uint32 count, uint8 settlementDayOfMonth)
        external
        pure
        returns (uint256[] memory dates, uint32[] memory nextSettlements, bool roundTrips)
    {
        dates = new uint256[](count);
        nextSettlements = new uint32[](count);
        roundTrips = true;
        for (uint32 i = 0; i < count; ++i) {
            uint32 day = firstDay + i;
            (uint256 year, uint256 month, uint256 dayOfMonth) = CreditCalendar.toDate(day);
            dates[i] = year * 10_000 + month * 100 + dayOfMonth;
            nextSettlements[i] = CreditCalendar.nextSettlementDay(day, settlementDayOfMonth);
            roundTrips = roundTrips && CreditCalendar.fromDate(year, month, dayOfMonth) == day;
        }
    }

    function dayOf(uint256 timestamp) external pure returns (uint32) {
        return CreditCalendar.dayOf(timestamp);
    }
}
