// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICreditFacility} from "../interfaces/ICreditFacility.sol";
import {HookToken, ITokenReceiver} from "./HookToken.sol";

/**
 * @title ReentrantPayee
 * @notice Test-only payee that calls back into the facility from {HookToken}'s transfer hook, to
 * show that a payout cannot be used to start a second payout or drawdown before it finishes.
 *
 * The test arms one call, then triggers a payment to this contract. The hook makes the armed call
 * once. In `Propagate` mode a failed call reverts the hook with the same data, so the outer payment
 * reverts with the facility's error. In `Record` mode the hook stores the revert data and returns,
 * so the outer payment completes and the test can check that only it was paid.
 *
 * WARNING: Anyone may arm and fire it. Never deploy this contract outside tests.
 */
contract ReentrantPayee is ITokenReceiver {
    enum Attack {
        None,
        PayFromLocked,
        PayFromLockedBatch,
        RepayFromLocked,
        Drawdown
    }

    enum Mode {
        Propagate,
        Record
    }

    struct ArmedCall {
        Attack attack;
        Mode mode;
        uint256 requestId;
        uint64 lineId;
        uint64 drawdownId;
        uint128 amount;
    }

    ICreditFacility public immutable facility;
    HookToken public immutable token;

    ArmedCall private _armed;
    uint256 private _hookCalls;
    uint256 private _facilityCallsSucceeded;
    bytes private _lastRevertData;

    /// @notice The payee called the facility with `attack`; `fromHook` is whether it did so mid-transfer.
    event FacilityCallMade(Attack attack, bool fromHook, bool succeeded, bytes revertData);

    /// @notice The caller is not the hook token.
    error ReentrantPayeeCallerInvalid(address caller);

    constructor(ICreditFacility facility_, HookToken token_) {
        facility = facility_;
        token = token_;
        token_.registerHook();
    }

    /// @notice Arms one call into the facility for the next token receipt or {fireArmed}.
    function arm(Attack attack, Mode mode, uint256 requestId, uint64 lineId, uint64 drawdownId, uint128 amount)
        external
    {
        _armed = ArmedCall(attack, mode, requestId, lineId, drawdownId, amount);
    }

    /// @notice Makes the armed call now, outside any transfer, and passes on a revert.
    /// @dev Tests use it to show that the payee holds every permission the armed call needs.
    function fireArmed() external {
        ArmedCall memory armed = _armed;
        delete _armed;

        _callFacility(armed, false, true);
    }

    /// @inheritdoc ITokenReceiver
    function onTokenReceived(address, uint256) external {
        if (msg.sender != address(token)) revert ReentrantPayeeCallerInvalid(msg.sender);
        ++_hookCalls;
        ArmedCall memory armed = _armed;
        if (armed.attack == Attack.None) return;
        delete _armed;

        _callFacility(armed, true, armed.mode == Mode.Propagate);
    }

    function hookCalls() external view returns (uint256) {
        return _hookCalls;
    }

    function facilityCallsSucceeded() external view returns (uint256) {
        return _facilityCallsSucceeded;
    }

    function lastRevertData() external view returns (bytes memory) {
        return _lastRevertData;
    }

    function _callFacility(ArmedCall memory armed, bool fromHook, bool propagateRevert) private {
        (bool succeeded, bytes memory revertData) = address(facility).call(_encode(armed));
        if (succeeded) ++_facilityCallsSucceeded;
        else _lastRevertData = revertData;

        emit FacilityCallMade(armed.attack, fromHook, succeeded, revertData);

        if (!succeeded && propagateRevert) {
            assembly ("memory-safe") {
                revert(add(revertData, 0x20), mload(revertData))
            }
        }
    }

    function _encode(ArmedCall memory armed) private view returns (bytes memory) {
        bytes32 invoiceHash = keccak256(abi.encode("reentrant invoice", armed.requestId));
        if (armed.attack == Attack.PayFromLocked) {
            return abi.encodeCall(
                ICreditFacility.payFromLocked, (armed.requestId, armed.drawdownId, address(this), armed.amount, invoiceHash)
            );
        }
        if (armed.attack == Attack.PayFromLockedBatch) {
            ICreditFacility.Payout[] memory payouts = new ICreditFacility.Payout[](1);
            payouts[0] = ICreditFacility.Payout(armed.drawdownId, address(this), armed.amount, invoiceHash);
            return abi.encodeCall(ICreditFacility.payFromLockedBatch, (armed.requestId, payouts));
        }
        if (armed.attack == Attack.RepayFromLocked) {
            return abi.encodeCall(ICreditFacility.repayFromLocked, (armed.requestId, armed.drawdownId, armed.amount));
        }
        return abi.encodeCall(
            ICreditFacility.drawdown, (armed.requestId, armed.lineId, armed.amount, address(this), invoiceHash)
        );
    }
}
