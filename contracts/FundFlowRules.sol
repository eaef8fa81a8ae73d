// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

import {IFundFlowRules} from "./interfaces/IFundFlowRules.sol";

/**
 * @title FundFlowRules
 * @notice The payee registry and the regulator's blocks and freezes, shared by every facility.
 */
contract FundFlowRules is IFundFlowRules, AccessControl {
    /// @notice Regulators block categories and freeze payees here and lines in every facility.
    bytes32 public constant REGULATOR_ROLE = keccak256("REGULATOR_ROLE");

    /// @notice Registrars (bank operators) register payees and change their categories.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");

    mapping(address account => Payee) private _payees;
    mapping(uint32 category => bool) private _blockedCategories;
    uint64 private _rulesVersion;

    constructor(address admin, address regulator) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(REGULATOR_ROLE, regulator);
    }

    /// @inheritdoc IFundFlowRules
    function registerPayee(address account, uint32 category, bytes32 documentsHash)
        external
        onlyRole(REGISTRAR_ROLE)
    {
        if (account == address(0)) revert FundFlowPayeeInvalid(account);
        if (category == 0) revert FundFlowCategoryInvalid(category);
        if (_payees[account].status != PayeeStatus.None) revert FundFlowPayeeAlreadyRegistered(account);

        _payees[account] = Payee(category, PayeeStatus.Active, msg.sender, documentsHash);
        uint64 version = _bumpVersion();

        emit PayeeRegistered(account, category, documentsHash, msg.sender, version);
    }

    /// @inheritdoc IFundFlowRules
    function changePayeeCategory(address account, uint32 category) external {
        if (!hasRole(REGISTRAR_ROLE, msg.sender) && !hasRole(REGULATOR_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, REGISTRAR_ROLE);
        }
        if (category == 0) revert FundFlowCategoryInvalid(category);
        Payee storage entry = _registered(account);
        uint32 previous = entry.category;
        // Otherwise a registrar could lift the regulator's block on a payee by relabelling it.
        if (_blockedCategories[previous] && !hasRole(REGULATOR_ROLE, msg.sender)) {
            revert FundFlowCategoryBlocked(account, previous);
        }

        entry.category = category;
        uint64 version = _bumpVersion();

        emit PayeeCategoryChanged(account, previous, category, msg.sender, version);
    }

    /// @inheritdoc IFundFlowRules
    function blockCategory(uint32 category, bytes32 reasonHash) external onlyRole(REGULATOR_ROLE) {
        if (category == 0) revert FundFlowCategoryInvalid(category);
        if (_blockedCategories[category]) revert FundFlowCategoryStateUnchanged(category, true);

        _blockedCategories[category] = true;
        uint64 version = _bumpVersion();

        emit CategoryBlocked(category, reasonHash, msg.sender, version);
    }

    /// @inheritdoc IFundFlowRules
    function unblockCategory(uint32 category) external onlyRole(REGULATOR_ROLE) {
        if (!_blockedCategories[category]) revert FundFlowCategoryStateUnchanged(category, false);

        _blockedCategories[category] = false;
        uint64 version = _bumpVersion();

        emit CategoryUnblocked(category, msg.sender, version);
    }

    /// @inheritdoc IFundFlowRules
    function freezePayee(address account, bytes32 reasonHash) external onlyRole(REGULATOR_ROLE) {
        Payee storage entry = _registered(account);
        if (entry.status == PayeeStatus.Frozen) revert FundFlowPayeeStateUnchanged(account, entry.status);

        entry.status = PayeeStatus.Frozen;
        uint64 version = _bumpVersion();

        emit PayeeFrozen(account, reasonHash, msg.sender, version);
    }

    /// @inheritdoc IFundFlowRules
    function unfreezePayee(address account) external onlyRole(REGULATOR_ROLE) {
        Payee storage entry = _registered(account);
        if (entry.status != PayeeStatus.Frozen) revert FundFlowPayeeStateUnchanged(account, entry.status);

        entry.status = PayeeStatus.Active;
        uint64 version = _bumpVersion();

        emit PayeeUnfrozen(account, msg.sender, version);
    }

    /// @inheritdoc IFundFlowRules
    function checkPayout(address account) external view returns (uint32 category, uint64 version) {
        Payee storage entry = _payees[account];
        category = entry.category;
        if (entry.status == PayeeStatus.None) revert FundFlowPayeeNotRegistered(account);
        if (entry.status == PayeeStatus.Frozen) revert FundFlowPayeeFrozen(account, category);
        if (_blockedCategories[category]) revert FundFlowCategoryBlocked(account, category);

        return (category, _rulesVersion);
    }

    /// @inheritdoc IFundFlowRules
    function isRegulator(address account) external view returns (bool) {
        return hasRole(REGULATOR_ROLE, account);
    }

    /// @inheritdoc IFundFlowRules
    function payee(address account) external view returns (Payee memory) {
        return _payees[account];
    }

    /// @inheritdoc IFundFlowRules
    function isCategoryBlocked(uint32 category) external view returns (bool) {
        return _blockedCategories[category];
    }

    /// @inheritdoc IFundFlowRules
    function rulesVersion() external view returns (uint64) {
        return _rulesVersion;
    }

    function _registered(address account) private view returns (Payee storage entry) {
        entry = _payees[account];
        if (entry.status == PayeeStatus.None) revert FundFlowPayeeNotRegistered(account);
    }

    function _bumpVersion() private returns (uint64) {
        return ++_rulesVersion;
    }
}
