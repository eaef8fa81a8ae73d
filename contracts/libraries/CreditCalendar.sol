// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title CreditCalendar
 * @notice Day arithmetic for credit lines in China Standard Time (UTC+8).
 *
 * A day number counts calendar days since 1970-01-01 in China Standard Time, so day `d` runs from
 * `d * 86400 - 8 hours` to `(d + 1) * 86400 - 8 hours` in Unix time. The civil-date conversions
 * use the proleptic Gregorian calendar with 400-year eras (146,097 days each), valid for every
 * date from 1970 on.
 */
library CreditCalendar {
    uint256 internal constant CST_OFFSET_SECONDS = 8 hours;
    uint256 private constant DAYS_PER_ERA = 146_097;
    // Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
    uint256 private constant EPOCH_SHIFT_DAYS = 719_468;

    /// @notice Returns the China Standard Time day number of a Unix timestamp.
    function dayOf(uint256 timestamp) internal pure returns (uint32) {
        return uint32((timestamp + CST_OFFSET_SECONDS) / 1 days);
    }

    // Integer division before multiplication is the method here: each quotient is a whole count of
    // eras, years or months, and the products rebuild the days those whole units cover.
    // slither-disable-start divide-before-multiply

    /// @notice Converts a day number to its civil date.
    function toDate(uint32 day) internal pure returns (uint256 year, uint256 month, uint256 dayOfMonth) {
        // Every intermediate is below 2^64 for a uint32 day, and no subtraction goes below zero.
        unchecked {
            // Years are counted from March, so that the leap day falls at the end of a counted year.
            uint256 shifted = uint256(day) + EPOCH_SHIFT_DAYS;
            uint256 era = shifted / DAYS_PER_ERA;
            uint256 dayOfEra = shifted - era * DAYS_PER_ERA;
            uint256 yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365;
            uint256 dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100);
            uint256 monthFromMarch = (5 * dayOfYear + 2) / 153;

            dayOfMonth = dayOfYear - (153 * monthFromMarch + 2) / 5 + 1;
            month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
            year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
        }
    }

    /// @notice Converts a civil date to its day number. The date must be valid and not before 1970-01-01.
    function fromDate(uint256 year, uint256 month, uint256 dayOfMonth) internal pure returns (uint32) {
        // The date is valid and not before 1970-01-01, so nothing overflows or goes below zero.
        unchecked {
            uint256 marchYear = month <= 2 ? year - 1 : year;
            uint256 era = marchYear / 400;
            uint256 yearOfEra = marchYear - era * 400;
            uint256 monthFromMarch = month > 2 ? month - 3 : month + 9;
            uint256 dayOfYear = (153 * monthFromMarch + 2) / 5 + dayOfMonth - 1;
            uint256 dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear;

            return uint32(era * DAYS_PER_ERA + dayOfEra - EPOCH_SHIFT_DAYS);
        }
    }

    // slither-disable-end divide-before-multiply

    /// @notice Returns the first settlement day strictly after `day`, for a settlement day of the month.
    /// @dev `settlementDayOfMonth` must be between 1 and 28 so that every month has it.
    function nextSettlementDay(uint32 day, uint8 settlementDayOfMonth) internal pure returns (uint32) {
        (uint256 year, uint256 month, uint256 dayOfMonth) = toDate(day);
        if (dayOfMonth < settlementDayOfMonth) {
            return fromDate(year, month, settlementDayOfMonth);
        }
        if (month == 12) {
            return fromDate(year + 1, 1, settlementDayOfMonth);
        }
        return fromDate(year, month + 1, settlementDayOfMonth);
    }
}
