// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {ICreditFacility} from "./interfaces/ICreditFacility.sol";
import {IFundFlowRules} from "./interfaces/IFundFlowRules.sol";
import {CreditCalendar} from "./libraries/CreditCalendar.sol";
import {InterestAccrual} from "./libraries/InterestAccrual.sol";

/**
 * @title CreditFacility
 * @notice One bank's revolving credit lines, with their interest, pools and fund-flow lock.
 *
 * Roles: operators submit applications, drawdowns, repayments and payouts; credit officers approve,
 * open, change limits, renew, freeze, default, write off and close; the treasury funds liquidity;
 * the admin grants roles and sets policy. The regulator role lives in {IFundFlowRules} and spans
 * every facility.
 */
contract CreditFacility is ICreditFacility, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;
    using InterestAccrual for InterestAccrual.State;

    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant CREDIT_OFFICER_ROLE = keccak256("CREDIT_OFFICER_ROLE");
    bytes32 public constant TREASURY_ROLE = keccak256("TREASURY_ROLE");
    bytes32 public constant REGULATOR_ROLE = keccak256("REGULATOR_ROLE");

    uint8 private constant FROZEN_BY_BANK = 1;
    uint8 private constant FROZEN_BY_REGULATOR = 2;
    uint8 private constant REVIEW_FLAGGED = 4;
    uint16 private constant MAX_RATE_BPS = 10_000;

    // Bit offsets of fields in a line's head and accrual slots, which {Line} declares in this order.
    uint256 private constant MATURITY_DAY_BIT = 48;
    uint256 private constant DUE_DAY_BIT = 80;
    uint256 private constant NEXT_RATE_DAY_BIT = 112;
    uint256 private constant POOL_ID_BIT = 144;
    uint256 private constant OVERDUE_INTEREST_BIT = 176;
    uint256 private constant NEXT_RATE_BPS_BIT = 240;
    uint256 private constant INTEREST_DUE_BIT = 128;
    uint256 private constant CURSOR_DAY_BIT = 192;
    uint256 private constant RATE_BPS_BIT = 224;
    // The head's bits that {_store} leaves alone: status, flags, the cycle counts and the pool id.
    uint256 private constant HEAD_KEPT_MASK = (1 << MATURITY_DAY_BIT) - 1 | ((1 << 32) - 1) << POOL_ID_BIT;

    /// @dev The first three slots hold what drawdowns and repayments use. {_load} and {_store} read and write
    /// them as whole words at the bit offsets above, so the order of these fields is fixed. A day's first
    /// accrual changes only the accrual slot, and the balances slot when principal moves. The head changes when
    /// interest settles or falls overdue, a pending rate applies or a renewal moves the maturity. `rateBps` is
    /// never zero on a line that exists, so the accrual slot never returns to zero and never costs a fresh slot.
    struct Line {
        // Slot 0, the head.
        LineStatus status;
        uint8 flags;
        uint16 revolvingCycles;
        uint16 reviewedCycles;
        uint32 maturityDay;
        uint32 dueDay;
        uint32 nextRateDay;
        uint32 poolId;
        uint64 overdueInterest;
        uint16 nextRateBps;
        // Slot 1, the balances.
        uint128 limit;
        uint128 principal;
        // Slot 2, the accrual.
        uint128 accrued;
        uint64 interestDue;
        uint32 cursorDay;
        uint16 rateBps;
        // Cold fields.
        address borrower;
        uint32 lastLimitChangeDay;
        address submitter;
        uint96 locked;
        uint128 writtenOffOutstanding;
        bytes32 applicationHash;
    }

    struct PendingLimitChange {
        uint128 limit;
        address proposer;
    }

    struct LockedFunds {
        uint64 lineId;
        uint128 amount;
    }

    struct Pool {
        uint128 limit;
        uint128 used;
    }

    IERC20 public immutable settlementToken;
    IFundFlowRules public immutable fundFlowRules;
    uint8 private immutable _settlementDayOfMonth;
    uint16 private immutable _penaltyMarkupPct;

    mapping(uint64 lineId => Line) private _lines;
    mapping(uint64 lineId => PendingLimitChange) private _pendingLimitChanges;
    mapping(uint64 lineId => mapping(address delegate => bool)) private _payoutDelegates;
    mapping(uint64 drawdownId => LockedFunds) private _lockedFunds;
    mapping(uint32 poolId => Pool) private _pools;
    mapping(uint256 word => uint256 bits) private _usedRequests;

    Policy private _policy;
    // The counters and the locked total share one slot, which every drawdown reads and writes.
    uint64 private _lineCount;
    uint64 private _drawdownCount;
    uint32 private _poolCount;
    uint96 private _totalLocked;

    modifier onlyRegulator() {
        _checkRegulator(msg.sender);
        _;
    }

    constructor(
        IERC20 token,
        IFundFlowRules rules,
        address admin,
        uint8 settlementDayOfMonth_,
        uint16 penaltyMarkupPct_,
        Policy memory policy_
    ) {
        if (settlementDayOfMonth_ == 0 || settlementDayOfMonth_ > 28) revert CreditPolicyInvalid("settlement day must be 1 to 28");
        settlementToken = token;
        fundFlowRules = rules;
        _settlementDayOfMonth = settlementDayOfMonth_;
        _penaltyMarkupPct = penaltyMarkupPct_;
        _setPolicy(policy_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------------------------------------
    // A line's life
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc ICreditFacility
    function applyForLine(
        uint256 requestId,
        address borrower,
        bytes32 applicationHash,
        uint128 limit,
        uint16 rateBps,
        uint32 maturityDay
    ) external onlyRole(OPERATOR_ROLE) returns (uint64 lineId) {
        _useRequest(requestId);
        if (borrower == address(0)) revert CreditBorrowerInvalid(borrower);
        if (limit == 0) revert CreditAmountZero();
        if (rateBps == 0 || rateBps > MAX_RATE_BPS) revert CreditRateInvalid(rateBps);
        if (maturityDay <= today()) revert CreditMaturityInvalid(maturityDay, today());

        lineId = ++_lineCount;
        Line storage line = _lines[lineId];
        line.status = LineStatus.Applied;
        line.borrower = borrower;
        line.applicationHash = applicationHash;
        line.limit = limit;
        line.rateBps = rateBps;
        line.maturityDay = maturityDay;
        line.submitter = msg.sender;

        emit LineApplied(lineId, requestId, borrower, applicationHash, limit, rateBps, maturityDay, msg.sender);
    }

    /// @inheritdoc ICreditFacility
    function approveLine(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Applied);
        if (line.submitter == msg.sender) revert CreditApproverIsSubmitter(lineId, msg.sender);

        line.status = LineStatus.Approved;

        emit LineApproved(lineId, requestId, msg.sender);
    }

    /// @inheritdoc ICreditFacility
    function rejectLine(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _existingLine(lineId);
        if (line.status != LineStatus.Applied && line.status != LineStatus.Approved) {
            revert CreditLineStatusInvalid(lineId, line.status);
        }

        line.status = LineStatus.Rejected;
        _leavePool(requestId, lineId, line);

        emit LineRejected(lineId, requestId, msg.sender);
    }

    /// @inheritdoc ICreditFacility
    function openLine(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Approved);
        uint32 day = today();
        if (line.maturityDay <= day) revert CreditMaturityInvalid(line.maturityDay, day);

        line.status = LineStatus.Active;
        line.cursorDay = day;

        emit LineOpened(lineId, requestId, day, line.limit, line.maturityDay);
    }

    /// @inheritdoc ICreditFacility
    function drawdown(uint256 requestId, uint64 lineId, uint128 amount, address payee, bytes32 invoiceHash)
        external
        onlyRole(OPERATOR_ROLE)
        nonReentrant
        returns (uint64 drawdownId)
    {
        _useRequest(requestId);
        if (amount == 0) revert CreditAmountZero();
        Line storage line = _lineIn(lineId, LineStatus.Active);
        uint32 day = today();
        // Only the first transaction of a day on this line accrues.
        if (line.cursorDay < day) _store(line, _advance(lineId, line, day));
        uint128 availableAfter = _checkDrawable(lineId, line, amount, day);
        uint128 freeLiquidity = liquidity();
        if (amount > freeLiquidity) revert CreditInsufficientLiquidity(freeLiquidity, amount);

        uint128 principalAfter = _addPrincipal(line, amount);
        drawdownId = ++_drawdownCount;

        emit LineDrawn(lineId, requestId, drawdownId, amount, payee, principalAfter, availableAfter);

        if (payee == address(0)) {
            _lockFunds(lineId, line, drawdownId, amount);
        } else {
            _payEntrusted(requestId, lineId, drawdownId, amount, payee, invoiceHash);
        }
    }

    /// @inheritdoc ICreditFacility
    function repay(uint256 requestId, uint64 lineId, uint128 amount) external onlyRole(OPERATOR_ROLE) nonReentrant {
        _useRequest(requestId);
        if (amount == 0) revert CreditAmountZero();

        _applyRepayment(requestId, lineId, amount);

        settlementToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc ICreditFacility
    function repayInterest(uint256 requestId, uint64 lineId)
        external
        onlyRole(OPERATOR_ROLE)
        nonReentrant
        returns (uint128 amount)
    {
        _useRequest(requestId);
        Line storage line = _repayableLine(lineId);
        InterestAccrual.State memory state = _advance(lineId, line, today());
        amount = state.overdueInterest + state.interestDue;
        if (amount == 0) revert CreditNothingOwed(lineId);

        _applyPayment(requestId, lineId, line, state, amount);

        settlementToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc ICreditFacility
    function payoff(uint256 requestId, uint64 lineId)
        external
        onlyRole(OPERATOR_ROLE)
        nonReentrant
        returns (uint128 amount)
    {
        _useRequest(requestId);
        Line storage line = _repayableLine(lineId);
        InterestAccrual.State memory state = _advance(lineId, line, today());
        amount = state.owed();
        if (amount == 0) revert CreditNothingOwed(lineId);

        _applyPayment(requestId, lineId, line, state, amount);

        settlementToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc ICreditFacility
    function changeLimit(uint256 requestId, uint64 lineId, uint128 limit) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Active);
        _checkSoloLimitChange(lineId, line, limit);

        _setLimit(requestId, lineId, line, limit, msg.sender, address(0));
    }

    /// @inheritdoc ICreditFacility
    function proposeLimitChange(uint256 requestId, uint64 lineId, uint128 limit)
        external
        onlyRole(CREDIT_OFFICER_ROLE)
    {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Active);
        if (limit == line.limit) revert CreditLimitUnchanged(lineId, limit);

        _pendingLimitChanges[lineId] = PendingLimitChange(limit, msg.sender);

        emit LimitChangeProposed(lineId, requestId, line.limit, limit, msg.sender);
    }

    /// @inheritdoc ICreditFacility
    function approveLimitChange(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Active);
        PendingLimitChange memory pending = _pendingLimitChanges[lineId];
        if (pending.proposer == address(0)) revert CreditNoPendingLimitChange(lineId);
        if (pending.proposer == msg.sender) revert CreditSecondOfficerRequired(lineId, pending.proposer);

        delete _pendingLimitChanges[lineId];
        _setLimit(requestId, lineId, line, pending.limit, pending.proposer, msg.sender);
    }

    /// @inheritdoc ICreditFacility
    function renewLine(
        uint256 requestId,
        uint64 lineId,
        uint32 maturityDay,
        uint128 limit,
        uint16 rateBps,
        uint32 rateEffectiveDay
    ) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Active);
        uint32 day = today();
        if (day > line.maturityDay) revert CreditLinePastMaturity(lineId, line.maturityDay, day);
        if (maturityDay <= line.maturityDay) revert CreditMaturityInvalid(maturityDay, line.maturityDay);
        if (rateBps > MAX_RATE_BPS) revert CreditRateInvalid(rateBps);
        if (rateBps != 0 && rateEffectiveDay < day) revert CreditRateEffectiveDayInvalid(lineId, rateEffectiveDay, day);
        if (limit != 0 && limit != line.limit) _checkSoloLimitChange(lineId, line, limit);

        InterestAccrual.State memory state = _advance(lineId, line, day);
        state.maturityDay = maturityDay;
        if (rateBps != 0) _scheduleRate(lineId, state, rateBps, rateEffectiveDay);
        _store(line, state);
        if (limit != 0 && limit != line.limit) _setLimit(requestId, lineId, line, limit, msg.sender, address(0));

        emit LineRenewed(lineId, requestId, maturityDay, line.limit, rateBps == 0 ? line.rateBps : rateBps, rateEffectiveDay);
    }

    /// @inheritdoc ICreditFacility
    function freezeLine(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _setFrozen(requestId, lineId, FROZEN_BY_BANK, true);
    }

    /// @inheritdoc ICreditFacility
    function unfreezeLine(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _setFrozen(requestId, lineId, FROZEN_BY_BANK, false);
    }

    /// @inheritdoc ICreditFacility
    function regulatorFreezeLine(uint256 requestId, uint64 lineId) external onlyRegulator {
        _setFrozen(requestId, lineId, FROZEN_BY_REGULATOR, true);
    }

    /// @inheritdoc ICreditFacility
    function regulatorUnfreezeLine(uint256 requestId, uint64 lineId) external onlyRegulator {
        _setFrozen(requestId, lineId, FROZEN_BY_REGULATOR, false);
    }

    /// @inheritdoc ICreditFacility
    function clearReviewFlag(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Active);

        line.flags &= ~REVIEW_FLAGGED;
        line.reviewedCycles = line.revolvingCycles;

        emit ReviewFlagCleared(lineId, requestId, line.revolvingCycles, msg.sender);
    }

    /// @inheritdoc ICreditFacility
    function declareDefault(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Active);
        InterestAccrual.State memory state = _advance(lineId, line, today());
        _store(line, state);

        line.status = LineStatus.Defaulted;

        emit LineDefaulted(lineId, requestId, state.principal, state.interestDue, state.overdueInterest);
    }

    /// @inheritdoc ICreditFacility
    function writeOff(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _lineIn(lineId, LineStatus.Defaulted);
        // A written-off line can neither pay out nor return locked money, so it must be returned first.
        if (line.locked != 0) revert FundFlowLockedBalanceRemaining(lineId, line.locked);
        InterestAccrual.State memory state = _advance(lineId, line, today());
        uint128 outstanding = state.owed();

        if (line.poolId != 0) _pools[line.poolId].used -= state.principal;
        line.status = LineStatus.WrittenOff;
        line.writtenOffOutstanding = outstanding;
        line.principal = 0;
        line.accrued = 0;
        line.interestDue = 0;
        line.overdueInterest = 0;
        _leavePool(requestId, lineId, line);

        emit LineWrittenOff(lineId, requestId, outstanding);
    }

    /// @inheritdoc ICreditFacility
    function recover(uint256 requestId, uint64 lineId, uint128 amount) external onlyRole(OPERATOR_ROLE) nonReentrant {
        _useRequest(requestId);
        if (amount == 0) revert CreditAmountZero();
        Line storage line = _lineIn(lineId, LineStatus.WrittenOff);
        uint128 outstanding = line.writtenOffOutstanding;
        if (amount > outstanding) revert CreditRepaymentExceedsOwed(lineId, amount, outstanding);

        line.writtenOffOutstanding = outstanding - amount;

        emit RecoveryReceived(lineId, requestId, amount, outstanding - amount);

        settlementToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc ICreditFacility
    function closeLine(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _existingLine(lineId);
        LineStatus status = line.status;
        if (status != LineStatus.Active && status != LineStatus.Defaulted && status != LineStatus.WrittenOff) {
            revert CreditLineStatusInvalid(lineId, status);
        }
        if (line.locked != 0) revert FundFlowLockedBalanceRemaining(lineId, line.locked);
        if (status != LineStatus.WrittenOff) {
            InterestAccrual.State memory state = _advance(lineId, line, today());
            uint128 owedNow = state.owed();
            if (owedNow != 0) revert CreditBalanceOutstanding(lineId, owedNow);
            _store(line, state);
        }

        line.status = LineStatus.Closed;
        _leavePool(requestId, lineId, line);

        emit LineClosed(lineId, requestId, line.writtenOffOutstanding);
    }

    // ---------------------------------------------------------------------------------------------
    // Fund-flow lock
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc ICreditFacility
    function payFromLocked(uint256 requestId, uint64 drawdownId, address payee, uint128 amount, bytes32 invoiceHash)
        external
        nonReentrant
    {
        _useRequest(requestId);

        _payLocked(requestId, Payout(drawdownId, payee, amount, invoiceHash));
    }

    /// @inheritdoc ICreditFacility
    function payFromLockedBatch(uint256 requestId, Payout[] calldata payouts) external nonReentrant {
        _useRequest(requestId);

        for (uint256 i = 0; i < payouts.length; ++i) {
            _payLocked(requestId, payouts[i]);
        }
    }

    /// @inheritdoc ICreditFacility
    function repayFromLocked(uint256 requestId, uint64 drawdownId, uint128 amount)
        external
        onlyRole(OPERATOR_ROLE)
        nonReentrant
    {
        _useRequest(requestId);
        if (amount == 0) revert CreditAmountZero();
        LockedFunds storage funds = _lockedFunds[drawdownId];
        uint64 lineId = funds.lineId;
        if (lineId == 0) revert FundFlowDrawdownNotLocked(drawdownId);
        if (amount > funds.amount) revert FundFlowLockedBalanceInsufficient(drawdownId, funds.amount, amount);

        funds.amount -= amount;
        _lines[lineId].locked -= uint96(amount);
        _totalLocked -= uint96(amount);

        emit LockedFundsReturned(lineId, drawdownId, requestId, amount, funds.amount);

        _applyRepayment(requestId, lineId, amount);
    }

    /// @inheritdoc ICreditFacility
    function setPayoutDelegate(uint256 requestId, uint64 lineId, address delegate, bool allowed)
        external
        onlyRole(OPERATOR_ROLE)
    {
        _useRequest(requestId);
        Line storage line = _existingLine(lineId);
        if (_isOver(line.status)) revert CreditLineStatusInvalid(lineId, line.status);

        _payoutDelegates[lineId][delegate] = allowed;

        emit PayoutDelegateSet(lineId, delegate, requestId, allowed);
    }

    // ---------------------------------------------------------------------------------------------
    // Pools, liquidity and policy
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc ICreditFacility
    function createPool(uint256 requestId, uint128 limit) external onlyRole(CREDIT_OFFICER_ROLE) returns (uint32 poolId) {
        _useRequest(requestId);
        if (limit == 0) revert CreditAmountZero();

        poolId = ++_poolCount;
        _pools[poolId].limit = limit;

        emit PoolCreated(poolId, requestId, limit);
    }

    /// @inheritdoc ICreditFacility
    function changePoolLimit(uint256 requestId, uint32 poolId, uint128 limit) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Pool storage entry = _existingPool(poolId);
        uint128 previous = entry.limit;

        entry.limit = limit;

        emit PoolLimitChanged(poolId, requestId, previous, limit);
    }

    /// @inheritdoc ICreditFacility
    function addPoolMember(uint256 requestId, uint32 poolId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Pool storage entry = _existingPool(poolId);
        Line storage line = _existingLine(lineId);
        LineStatus status = line.status;
        if (status != LineStatus.Approved && status != LineStatus.Active) revert CreditLineStatusInvalid(lineId, status);
        if (line.poolId != 0) revert CreditLineAlreadyInPool(lineId, line.poolId);

        line.poolId = poolId;
        entry.used += line.principal;

        emit PoolMemberAdded(poolId, lineId, requestId, entry.used);
    }

    /// @inheritdoc ICreditFacility
    function removePoolMember(uint256 requestId, uint64 lineId) external onlyRole(CREDIT_OFFICER_ROLE) {
        _useRequest(requestId);
        Line storage line = _existingLine(lineId);
        uint32 poolId = line.poolId;
        if (poolId == 0) revert CreditLineNotInPool(lineId);
        Pool storage entry = _pools[poolId];

        entry.used -= line.principal;
        line.poolId = 0;

        emit PoolMemberRemoved(poolId, lineId, requestId, entry.used);
    }

    /// @inheritdoc ICreditFacility
    function fundLiquidity(uint256 requestId, uint128 amount) external onlyRole(TREASURY_ROLE) nonReentrant {
        _useRequest(requestId);
        if (amount == 0) revert CreditAmountZero();

        settlementToken.safeTransferFrom(msg.sender, address(this), amount);

        emit LiquidityFunded(msg.sender, requestId, amount, liquidity());
    }

    /// @inheritdoc ICreditFacility
    function withdrawLiquidity(uint256 requestId, address to, uint128 amount)
        external
        onlyRole(TREASURY_ROLE)
        nonReentrant
    {
        _useRequest(requestId);
        if (amount == 0) revert CreditAmountZero();
        uint128 freeLiquidity = liquidity();
        if (amount > freeLiquidity) revert CreditInsufficientLiquidity(freeLiquidity, amount);

        emit LiquidityWithdrawn(to, requestId, amount, freeLiquidity - amount);

        settlementToken.safeTransfer(to, amount);
    }

    /// @inheritdoc ICreditFacility
    function updatePolicy(Policy calldata policy_) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _setPolicy(policy_);
    }

    // ---------------------------------------------------------------------------------------------
    // Reads
    // ---------------------------------------------------------------------------------------------

    /// @inheritdoc ICreditFacility
    function lineState(uint64 lineId, uint32 day) public view returns (LineState memory view_) {
        Line storage line = _existingLine(lineId);
        InterestAccrual.State memory state = _load(line);
        if (_accrues(line.status)) {
            if (day < state.cursorDay) revert CreditDayInPast(day, state.cursorDay);
            state.advance(day, _terms());
        }

        view_.status = line.status;
        view_.frozenByBank = line.flags & FROZEN_BY_BANK != 0;
        view_.frozenByRegulator = line.flags & FROZEN_BY_REGULATOR != 0;
        view_.reviewFlagged = line.flags & REVIEW_FLAGGED != 0;
        view_.revolvingCycles = line.revolvingCycles;
        view_.rateBps = state.rateBps;
        view_.maturityDay = state.maturityDay;
        view_.poolId = line.poolId;
        view_.limit = line.limit;
        view_.principal = state.principal;
        view_.interestDue = state.interestDue;
        view_.overdueInterest = state.overdueInterest;
        view_.accruedInterest = InterestAccrual.roundToFen(state.accrued);
        view_.available = _available(line, state.principal);
        view_.payoffAmount = state.owed();
        view_.writtenOffOutstanding = line.writtenOffOutstanding;
        view_.locked = line.locked;
    }

    /// @inheritdoc ICreditFacility
    function payoffAmount(uint64 lineId, uint32 day) external view returns (uint128) {
        return lineState(lineId, day).payoffAmount;
    }

    /// @inheritdoc ICreditFacility
    function today() public view returns (uint32) {
        return CreditCalendar.dayOf(block.timestamp);
    }

    /// @inheritdoc ICreditFacility
    function liquidity() public view returns (uint128) {
        return (settlementToken.balanceOf(address(this)) - _totalLocked).toUint128();
    }

    /// @inheritdoc ICreditFacility
    function totalLocked() external view returns (uint128) {
        return _totalLocked;
    }

    /// @inheritdoc ICreditFacility
    function lockedBalance(uint64 drawdownId) external view returns (uint64 lineId, uint128 amount) {
        LockedFunds storage funds = _lockedFunds[drawdownId];
        return (funds.lineId, funds.amount);
    }

    /// @inheritdoc ICreditFacility
    function isRequestUsed(uint256 requestId) external view returns (bool) {
        return _usedRequests[requestId >> 8] & (1 << (requestId & 0xff)) != 0;
    }

    /// @inheritdoc ICreditFacility
    function lineCount() external view returns (uint64) {
        return _lineCount;
    }

    /// @inheritdoc ICreditFacility
    function policy() external view returns (Policy memory) {
        return _policy;
    }

    /// @inheritdoc ICreditFacility
    function settlementDayOfMonth() external view returns (uint8) {
        return _settlementDayOfMonth;
    }

    /// @inheritdoc ICreditFacility
    function penaltyMarkupPct() external view returns (uint16) {
        return _penaltyMarkupPct;
    }

    /// @inheritdoc ICreditFacility
    function pool(uint32 poolId) external view returns (uint128 limit, uint128 used) {
        Pool storage entry = _pools[poolId];
        return (entry.limit, entry.used);
    }

    // ---------------------------------------------------------------------------------------------
    // Internal steps
    // ---------------------------------------------------------------------------------------------

    /// @dev Request ids share 256-bit words, so ids allocated in sequence cost a warm slot write.
    function _useRequest(uint256 requestId) private {
        uint256 word = requestId >> 8;
        uint256 bit = 1 << (requestId & 0xff);
        uint256 bits = _usedRequests[word];
        if (bits & bit != 0) revert CreditRequestAlreadyUsed(requestId);
        _usedRequests[word] = bits | bit;
    }

    function _checkRegulator(address account) private view {
        if (!fundFlowRules.isRegulator(account)) revert AccessControlUnauthorizedAccount(account, REGULATOR_ROLE);
    }

    function _existingLine(uint64 lineId) private view returns (Line storage line) {
        line = _lines[lineId];
        if (line.status == LineStatus.None) revert CreditLineNotFound(lineId);
    }

    function _lineIn(uint64 lineId, LineStatus status) private view returns (Line storage line) {
        line = _existingLine(lineId);
        if (line.status != status) revert CreditLineStatusInvalid(lineId, line.status);
    }

    /// @dev Payments into a written-off or closed line are refused, so they can never revive it.
    function _repayableLine(uint64 lineId) private view returns (Line storage line) {
        line = _existingLine(lineId);
        if (line.status != LineStatus.Active && line.status != LineStatus.Defaulted) {
            revert CreditLineStatusInvalid(lineId, line.status);
        }
    }

    function _existingPool(uint32 poolId) private view returns (Pool storage entry) {
        if (poolId == 0 || poolId > _poolCount) revert CreditPoolNotFound(poolId);
        entry = _pools[poolId];
    }

    function _accrues(LineStatus status) private pure returns (bool) {
        return status == LineStatus.Active || status == LineStatus.Defaulted;
    }

    /// @dev Nothing may change a line that is over, except the recovery and closure of a written-off one.
    function _isOver(LineStatus status) private pure returns (bool) {
        return status == LineStatus.Rejected || status == LineStatus.WrittenOff || status == LineStatus.Closed;
    }

    /// @dev A line that is over leaves its pool. The caller has taken its principal out of the pool's use.
    function _leavePool(uint256 requestId, uint64 lineId, Line storage line) private {
        uint32 poolId = line.poolId;
        if (poolId == 0) return;

        line.poolId = 0;

        emit PoolMemberRemoved(poolId, lineId, requestId, _pools[poolId].used);
    }

    function _terms() private view returns (InterestAccrual.Terms memory) {
        return InterestAccrual.Terms(_settlementDayOfMonth, _penaltyMarkupPct);
    }

    function _load(Line storage line) private view returns (InterestAccrual.State memory state) {
        uint256 head;
        uint256 accrual;
        assembly ("memory-safe") {
            head := sload(line.slot)
            accrual := sload(add(line.slot, 2))
        }
        state.principal = line.principal;
        state.accrued = uint128(accrual);
        state.interestDue = uint64(accrual >> INTEREST_DUE_BIT);
        state.overdueInterest = uint64(head >> OVERDUE_INTEREST_BIT);
        state.cursorDay = uint32(accrual >> CURSOR_DAY_BIT);
        state.dueDay = uint32(head >> DUE_DAY_BIT);
        state.maturityDay = uint32(head >> MATURITY_DAY_BIT);
        state.nextRateDay = uint32(head >> NEXT_RATE_DAY_BIT);
        state.rateBps = uint16(accrual >> RATE_BPS_BIT);
        state.nextRateBps = uint16(head >> NEXT_RATE_BPS_BIT);
    }

    function _store(Line storage line, InterestAccrual.State memory state) private {
        uint256 head;
        assembly ("memory-safe") {
            head := sload(line.slot)
        }
        head = (head & HEAD_KEPT_MASK) | uint256(state.maturityDay) << MATURITY_DAY_BIT
            | uint256(state.dueDay) << DUE_DAY_BIT | uint256(state.nextRateDay) << NEXT_RATE_DAY_BIT
            | uint256(uint256(state.overdueInterest).toUint64()) << OVERDUE_INTEREST_BIT
            | uint256(state.nextRateBps) << NEXT_RATE_BPS_BIT;
        uint256 accrual = uint256(state.accrued) | uint256(uint256(state.interestDue).toUint64()) << INTEREST_DUE_BIT
            | uint256(state.cursorDay) << CURSOR_DAY_BIT | uint256(state.rateBps) << RATE_BPS_BIT;
        assembly ("memory-safe") {
            sstore(line.slot, head)
            sstore(add(line.slot, 2), accrual)
        }
        line.principal = state.principal;
    }

    /**
     * @dev Brings a line's interest up to the start of `day`, recording each settlement and each
     * amount falling overdue on the way. The caller stores the returned state after its own changes.
     */
    function _advance(uint64 lineId, Line storage line, uint32 day) private returns (InterestAccrual.State memory state) {
        state = _load(line);
        InterestAccrual.Terms memory terms = _terms();
        while (state.cursorDay < day) {
            InterestAccrual.StepResult memory result = state.step(day, terms);
            if (result.becameOverdue != 0) {
                emit InterestOverdue(lineId, result.overdueFromDueDay, result.becameOverdue, state.overdueInterest);
            }
            if (result.settled && result.settledAmount != 0) {
                emit InterestSettled(lineId, state.dueDay, result.settledAmount, state.interestDue, state.overdueInterest);
            }
        }
    }

    function _available(Line storage line, uint128 principal) private view returns (uint128 room) {
        room = line.limit > principal ? line.limit - principal : 0;
        if (line.poolId != 0) {
            Pool storage entry = _pools[line.poolId];
            uint128 poolRoom = entry.limit > entry.used ? entry.limit - entry.used : 0;
            if (poolRoom < room) room = poolRoom;
        }
    }

    /// @dev Returns the amount still available after the drawdown. The line is up to date with `day`.
    function _checkDrawable(uint64 lineId, Line storage line, uint128 amount, uint32 day)
        private
        view
        returns (uint128)
    {
        uint8 flags = line.flags;
        if (flags & (FROZEN_BY_BANK | FROZEN_BY_REGULATOR) != 0) {
            revert CreditLineFrozen(lineId, flags & FROZEN_BY_BANK != 0, flags & FROZEN_BY_REGULATOR != 0);
        }
        uint32 maturityDay = line.maturityDay;
        if (day > maturityDay) revert CreditLinePastMaturity(lineId, maturityDay, day);
        uint64 overdueInterest = line.overdueInterest;
        if (overdueInterest != 0) revert CreditInterestOverdue(lineId, overdueInterest);
        if (flags & REVIEW_FLAGGED != 0 && _policy.reviewRequired) {
            revert CreditReviewRequired(lineId, line.revolvingCycles);
        }
        uint128 limit = line.limit;
        uint128 principal = line.principal;
        uint128 lineRoom = limit > principal ? limit - principal : 0;
        if (amount > lineRoom) revert CreditLimitExceeded(lineId, lineRoom, amount);
        uint128 room = lineRoom;
        uint32 poolId = line.poolId;
        if (poolId != 0) {
            Pool storage entry = _pools[poolId];
            uint128 poolRoom = entry.limit > entry.used ? entry.limit - entry.used : 0;
            if (amount > poolRoom) revert CreditPoolLimitExceeded(poolId, lineId, poolRoom, amount);
            if (poolRoom < room) room = poolRoom;
        }
        // Both rooms were checked to be at least `amount`.
        unchecked {
            return room - amount;
        }
    }

    function _addPrincipal(Line storage line, uint128 amount) private returns (uint128 principalAfter) {
        principalAfter = line.principal + amount;
        line.principal = principalAfter;
        uint32 poolId = line.poolId;
        if (poolId != 0) _pools[poolId].used += amount;
    }

    function _lockFunds(uint64 lineId, Line storage line, uint64 drawdownId, uint128 amount) private {
        uint128 threshold = _policy.entrustedThreshold;
        if (amount >= threshold) revert CreditEntrustedPaymentRequired(lineId, amount, threshold);

        _lockedFunds[drawdownId] = LockedFunds(lineId, amount);
        line.locked += uint256(amount).toUint96();
        _totalLocked += uint256(amount).toUint96();

        emit FundsLocked(lineId, drawdownId, amount, _totalLocked);
    }

    function _payEntrusted(
        uint256 requestId,
        uint64 lineId,
        uint64 drawdownId,
        uint128 amount,
        address payee,
        bytes32 invoiceHash
    ) private {
        if (invoiceHash == bytes32(0)) revert CreditInvoiceHashMissing(lineId);
        (uint32 category, uint64 version) = fundFlowRules.checkPayout(payee);

        _emitPayout(lineId, requestId, Payout(drawdownId, payee, amount, invoiceHash), category, version, 0);

        settlementToken.safeTransfer(payee, amount);
    }

    function _payLocked(uint256 requestId, Payout memory payout) private {
        LockedFunds storage funds = _lockedFunds[payout.drawdownId];
        uint64 lineId = funds.lineId;
        if (lineId == 0) revert FundFlowDrawdownNotLocked(payout.drawdownId);
        _checkPayoutCaller(lineId);
        Line storage line = _lineIn(lineId, LineStatus.Active);
        uint8 flags = line.flags;
        if (flags & (FROZEN_BY_BANK | FROZEN_BY_REGULATOR) != 0) {
            revert CreditLineFrozen(lineId, flags & FROZEN_BY_BANK != 0, flags & FROZEN_BY_REGULATOR != 0);
        }
        if (payout.amount == 0) revert CreditAmountZero();
        if (payout.invoiceHash == bytes32(0)) revert CreditInvoiceHashMissing(lineId);
        uint128 locked = funds.amount;
        if (payout.amount > locked) revert FundFlowLockedBalanceInsufficient(payout.drawdownId, locked, payout.amount);
        (uint32 category, uint64 version) = fundFlowRules.checkPayout(payout.payee);

        funds.amount = locked - payout.amount;
        line.locked -= uint96(payout.amount);
        _totalLocked -= uint96(payout.amount);

        _emitPayout(lineId, requestId, payout, category, version, locked - payout.amount);

        settlementToken.safeTransfer(payout.payee, payout.amount);
    }

    function _emitPayout(
        uint64 lineId,
        uint256 requestId,
        Payout memory payout,
        uint32 category,
        uint64 version,
        uint128 lockedAfter
    ) private {
        emit PayoutMade(
            lineId,
            payout.drawdownId,
            payout.payee,
            requestId,
            category,
            payout.invoiceHash,
            payout.amount,
            version,
            lockedAfter
        );
    }

    function _checkPayoutCaller(uint64 lineId) private view {
        if (!hasRole(OPERATOR_ROLE, msg.sender) && !_payoutDelegates[lineId][msg.sender]) {
            revert FundFlowNotPayoutDelegate(lineId, msg.sender);
        }
    }

    /// @dev Applies a repayment of `amount` to a line; the caller moves the tokens afterwards.
    function _applyRepayment(uint256 requestId, uint64 lineId, uint128 amount) private {
        Line storage line = _repayableLine(lineId);
        _applyPayment(requestId, lineId, line, _advance(lineId, line, today()), amount);
    }

    /// @dev Applies a payment to a line whose accrual `state` is up to date with today, and stores the state.
    function _applyPayment(
        uint256 requestId,
        uint64 lineId,
        Line storage line,
        InterestAccrual.State memory state,
        uint128 amount
    ) private {
        uint128 owedNow = state.owed();
        if (amount > owedNow) revert CreditRepaymentExceedsOwed(lineId, amount, owedNow);
        bool hadPrincipal = state.principal != 0;

        InterestAccrual.Allocation memory paid = state.applyPayment(amount);
        _store(line, state);
        if (line.poolId != 0 && paid.principal != 0) _pools[line.poolId].used -= paid.principal;

        _emitRepaid(lineId, requestId, paid, state);

        if (hadPrincipal && state.principal == 0) _completeCycle(lineId, line);
    }

    function _emitRepaid(
        uint64 lineId,
        uint256 requestId,
        InterestAccrual.Allocation memory paid,
        InterestAccrual.State memory state
    ) private {
        emit Repaid(
            lineId,
            requestId,
            paid.overdueInterest + paid.interestDue + paid.principal + paid.accrued,
            paid.overdueInterest,
            paid.interestDue,
            paid.principal,
            paid.accrued,
            state.principal,
            state.interestDue,
            state.overdueInterest
        );
    }

    function _completeCycle(uint64 lineId, Line storage line) private {
        uint16 cycles = line.revolvingCycles + 1;
        line.revolvingCycles = cycles;
        bool flagged = cycles - line.reviewedCycles > _policy.cycleThreshold;
        if (flagged) line.flags |= REVIEW_FLAGGED;

        emit RevolvingCycleCompleted(lineId, cycles, flagged);
    }

    function _checkSoloLimitChange(uint64 lineId, Line storage line, uint128 limit) private view {
        uint128 current = line.limit;
        if (limit == current) revert CreditLimitUnchanged(lineId, limit);
        uint256 change = limit > current ? limit - current : current - limit;
        uint16 maxBps = _policy.maxLimitChangeBps;
        if (change * 10_000 > uint256(current) * maxBps) {
            revert CreditLimitChangeTooLarge(lineId, current, limit, maxBps);
        }
        uint32 last = line.lastLimitChangeDay;
        uint32 nextAllowed = last + _policy.limitChangeIntervalDays;
        if (last != 0 && today() < nextAllowed) revert CreditLimitChangeTooSoon(lineId, last, nextAllowed);
    }

    /// @dev `officer` made or proposed the change; `approver` is the second officer, or zero for a solo change.
    function _setLimit(
        uint256 requestId,
        uint64 lineId,
        Line storage line,
        uint128 limit,
        address officer,
        address approver
    ) private {
        uint128 previous = line.limit;

        line.limit = limit;
        line.lastLimitChangeDay = today();

        emit LimitChanged(lineId, requestId, previous, limit, officer, approver);
    }

    function _scheduleRate(uint64 lineId, InterestAccrual.State memory state, uint16 rateBps, uint32 effectiveDay)
        private
        pure
    {
        // A line stores one pending change, so scheduling a later one would drop the pending one unapplied.
        uint32 pendingDay = state.nextRateDay;
        if (pendingDay != 0 && effectiveDay > pendingDay) {
            revert CreditRateChangePending(lineId, pendingDay, effectiveDay);
        }
        if (effectiveDay <= state.cursorDay) {
            // The line is up to date with today's start, so a rate effective today applies to today's balance.
            state.rateBps = rateBps;
            state.nextRateDay = 0;
            state.nextRateBps = 0;
        } else {
            state.nextRateDay = effectiveDay;
            state.nextRateBps = rateBps;
        }
    }

    function _setFrozen(uint256 requestId, uint64 lineId, uint8 flag, bool frozen) private {
        _useRequest(requestId);
        Line storage line = _existingLine(lineId);
        if (!_accrues(line.status)) revert CreditLineStatusInvalid(lineId, line.status);
        if ((line.flags & flag != 0) == frozen) revert CreditFreezeUnchanged(lineId, frozen);

        line.flags = frozen ? line.flags | flag : line.flags & ~flag;
        bool byRegulator = flag == FROZEN_BY_REGULATOR;

        if (frozen) emit LineFrozen(lineId, requestId, msg.sender, byRegulator);
        else emit LineUnfrozen(lineId, requestId, msg.sender, byRegulator);
    }

    function _setPolicy(Policy memory policy_) private {
        if (policy_.maxLimitChangeBps > 10_000) revert CreditPolicyInvalid("max limit change above 10000 bps");
        if (policy_.cycleThreshold == 0) revert CreditPolicyInvalid("cycle threshold must be positive");
        if (policy_.entrustedThreshold == 0) revert CreditPolicyInvalid("entrusted threshold must be positive");

        _policy = policy_;

        emit PolicyUpdated(
            policy_.entrustedThreshold,
            policy_.maxLimitChangeBps,
            policy_.limitChangeIntervalDays,
            policy_.cycleThreshold,
            policy_.reviewRequired
        );
    }
}
