// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title IFundFlowRules
 * @notice The registry of payees that credit money may reach, and the regulator's rules over it.
 *
 * Banks register their borrowers' payees with a category code and the keccak256 hash of the
 * off-chain registration documents. The regulator blocks categories (crypto-asset exchanges,
 * securities trading, real-estate speculation, onward lending, ...) and freezes single payees.
 * Every rule change increments `rulesVersion`, so each payout event can name the version it passed.
 *
 * Category codes are small integers agreed off chain; the codes used by this project's bridge are
 * listed in its documentation. Code 0 is never valid.
 */
interface IFundFlowRules {
    enum PayeeStatus {
        None,
        Active,
        Frozen
    }

    struct Payee {
        uint32 category;
        PayeeStatus status;
        address registrar;
        bytes32 documentsHash;
    }

    /// @notice The payee was never registered.
    error FundFlowPayeeNotRegistered(address payee);

    /// @notice The regulator froze the payee, so no credit money may reach it.
    error FundFlowPayeeFrozen(address payee, uint32 category);

    /// @notice The payee's category is on the regulator's blocked list.
    error FundFlowCategoryBlocked(address payee, uint32 category);

    /// @notice The payee is registered already; change its category instead of registering it again.
    error FundFlowPayeeAlreadyRegistered(address payee);

    /// @notice The address cannot be a payee (the zero address).
    error FundFlowPayeeInvalid(address payee);

    /// @notice Category code 0 is not a category.
    error FundFlowCategoryInvalid(uint32 category);

    /// @notice The category is blocked already (or, when unblocking, not blocked).
    error FundFlowCategoryStateUnchanged(uint32 category, bool blocked);

    /// @notice The payee is frozen already (or, when unfreezing, not frozen).
    error FundFlowPayeeStateUnchanged(address payee, PayeeStatus status);

    event PayeeRegistered(
        address indexed payee, uint32 indexed category, bytes32 documentsHash, address indexed registrar, uint64 rulesVersion
    );
    event PayeeCategoryChanged(
        address indexed payee, uint32 previousCategory, uint32 indexed category, address changedBy, uint64 rulesVersion
    );
    event PayeeFrozen(address indexed payee, bytes32 reasonHash, address indexed regulator, uint64 rulesVersion);
    event PayeeUnfrozen(address indexed payee, address indexed regulator, uint64 rulesVersion);
    event CategoryBlocked(uint32 indexed category, bytes32 reasonHash, address indexed regulator, uint64 rulesVersion);
    event CategoryUnblocked(uint32 indexed category, address indexed regulator, uint64 rulesVersion);

    /// @notice Registers a payee. Only accounts with the registrar role (bank operators) may do it.
    function registerPayee(address payee, uint32 category, bytes32 documentsHash) external;

    /**
     * @notice Moves a payee to another category. Later payouts are checked against the new one.
     * @dev Registrars and the regulator may do it, but only the regulator may move a payee out of a
     * blocked category. A registrar's attempt reverts with {FundFlowCategoryBlocked}.
     */
    function changePayeeCategory(address payee, uint32 category) external;

    /// @notice Blocks a category for every payout from every facility. Regulator only.
    function blockCategory(uint32 category, bytes32 reasonHash) external;

    /// @notice Lifts a category block. Regulator only.
    function unblockCategory(uint32 category) external;

    /// @notice Freezes one payee. Regulator only.
    function freezePayee(address payee, bytes32 reasonHash) external;

    /// @notice Lifts a payee freeze. Regulator only.
    function unfreezePayee(address payee) external;

    /**
     * @notice Checks that credit money may be paid to `payee` now.
     * @return category The payee's category at this block.
     * @return version The rules version the payout passed.
     * @dev Reverts with {FundFlowPayeeNotRegistered}, {FundFlowPayeeFrozen} or {FundFlowCategoryBlocked}.
     */
    function checkPayout(address payee) external view returns (uint32 category, uint64 version);

    /// @notice Whether `account` holds the regulator role, which spans every facility.
    function isRegulator(address account) external view returns (bool);

    function payee(address account) external view returns (Payee memory);

    function isCategoryBlocked(uint32 category) external view returns (bool);

    function rulesVersion() external view returns (uint64);
}
