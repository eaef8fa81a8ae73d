// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice The recipient side of {HookToken}'s transfer hook.
interface ITokenReceiver {
    /// @notice Called by the token after `amount` moved from `from` to this contract.
    function onTokenReceived(address from, uint256 amount) external;
}

/**
 * @title HookToken
 * @notice Test-only settlement token with 2 decimals that hands control to the recipient during a
 * transfer, the way ERC-777 and ERC-1363 tokens do. It exists to test reentrancy into the facility.
 *
 * A recipient opts in with {registerHook}. After the balances move, the token calls the recipient's
 * `onTokenReceived`, and a revert in that call reverts the whole transfer with the same data.
 *
 * WARNING: Anyone may mint. Never deploy this contract outside tests.
 */
contract HookToken is ERC20 {
    mapping(address account => bool) private _hookRegistered;

    event HookRegistered(address indexed account);

    constructor() ERC20("Hook Deposit", "HKD") {}

    /// @notice Two decimals: amounts are counted in fen, as with the real settlement token.
    function decimals() public pure override returns (uint8) {
        return 2;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Makes every later transfer to the caller call its `onTokenReceived`.
    function registerHook() external {
        _hookRegistered[msg.sender] = true;

        emit HookRegistered(msg.sender);
    }

    function isHookRegistered(address account) external view returns (bool) {
        return _hookRegistered[account];
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);

        if (to != address(0) && _hookRegistered[to]) ITokenReceiver(to).onTokenReceived(from, value);
    }
}
