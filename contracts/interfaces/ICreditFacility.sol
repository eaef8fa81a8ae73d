// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/**
 * @title ICreditFacility
 * @notice One bank's revolving credit lines: their life, their interest and where their money goes.
 *
 * Amounts are integers in the settlement token's minor unit (the fen, 2 decimals). Days are China
 * Standard Time day numbers (see {CreditCalendar}). Every state-changing call by the bank carries a
 * `requestId` that can be used once per facility, so a resent transaction never acts twice.
 *
 * Interest: ACT/360 on each day's end-of-day principal (the drawdown day counts, the repayment day
 * does not). On the settlement day of each month the interest accrued through the day before is
 * rounded half-up to the fen and becomes due; interest still unpaid after its due day is overdue and
 * accrues interest itself. From the day after maturity, principal and overdue interest accrue at the
 * penalty rate. Settlement is lazy: the figures are the same whether or not anyone touches the line
 * on a settlement day.
 */
interface ICreditFacility {
    enum LineStatus {
        None,
        Applied,
        Approved,
        Rejected,
        Active,
        Defaulted,
        WrittenOff,
        Closed
    }

    /// @notice The facility's adjustable policy. Settlement day and penalty markup are fixed at deployment.
    struct Policy {
        // Drawdowns of at least this amount must pay a registered payee directly (entrusted payment).
        uint128 entrustedThreshold;
        // The largest limit change one officer may make alone, in basis points of the current limit.
        uint16 maxLimitChangeBps;
        // The least number of days between two limit changes made by one officer alone.
        uint16 limitChangeIntervalDays;
        // Revolving cycles after which a line is flagged for review.
        uint16 cycleThreshold;
        // Whether a flagged line's drawdowns wait for an officer to clear the flag.
        bool reviewRequired;
    }

    /// @notice A line's balances as they stand at a given day, with lazy settlement applied.
    struct LineState {
        LineStatus status;
        bool frozenByBank;
        bool frozenByRegulator;
        bool reviewFlagged;
        uint16 revolvingCycles;
        uint16 rateBps;
        uint32 maturityDay;
        uint32 poolId;
        uint128 limit;
        uint128 principal;
        uint128 interestDue;
        uint128 overdueInterest;
        // Interest accrued in the running period through the day before `day`, rounded half-up.
        uint128 accruedInterest;
        uint128 available;
        uint128 payoffAmount;
        uint128 writtenOffOutstanding;
        uint128 locked;
    }

    /// @notice A payout from a self-directed drawdown's locked balance.
    struct Payout {
        uint64 drawdownId;
        address payee;
        uint128 amount;
        bytes32 invoiceHash;
    }

    // ---------------------------------------------------------------------------------------------
    // Errors
    // ---------------------------------------------------------------------------------------------

    /// @notice The request id was used before by this facility.
    error CreditRequestAlreadyUsed(uint256 requestId);

    error CreditLineNotFound(uint64 lineId);

    /// @notice The action is not allowed while the line is in `status`.
    error CreditLineStatusInvalid(uint64 lineId, LineStatus status);

    /// @notice The officer approving an application submitted it; a second person must approve.
    error CreditApproverIsSubmitter(uint64 lineId, address account);

    error CreditLineFrozen(uint64 lineId, bool frozenByBank, bool frozenByRegulator);

    /// @notice The line is frozen already by this party, or not frozen by it when unfreezing.
    error CreditFreezeUnchanged(uint64 lineId, bool frozen);

    error CreditLinePastMaturity(uint64 lineId, uint32 maturityDay, uint32 today);

    /// @notice Drawing `requested` would take principal above the limit; `available` could be drawn.
    error CreditLimitExceeded(uint64 lineId, uint128 available, uint128 requested);

    /// @notice Drawing `requested` would take the pool above its limit; `poolRoom` could be drawn.
    error CreditPoolLimitExceeded(uint32 poolId, uint64 lineId, uint128 poolRoom, uint128 requested);

    /// @notice Drawdowns wait until the overdue interest is repaid.
    error CreditInterestOverdue(uint64 lineId, uint128 overdueInterest);

    /// @notice The line passed its revolving-cycle threshold and waits for an officer's review.
    error CreditReviewRequired(uint64 lineId, uint16 revolvingCycles);

    error CreditAmountZero();

    /// @notice The repayment is larger than everything owed today; `owed` is the payoff amount.
    error CreditRepaymentExceedsOwed(uint64 lineId, uint128 amount, uint128 owed);

    error CreditNothingOwed(uint64 lineId);

    /// @notice The line still owes `owed` and cannot be closed.
    error CreditBalanceOutstanding(uint64 lineId, uint128 owed);

    /// @notice The change exceeds what one officer may do alone; a second officer must approve it.
    error CreditLimitChangeTooLarge(uint64 lineId, uint128 currentLimit, uint128 requestedLimit, uint16 maxChangeBps);

    /// @notice The last change was too recent for one officer alone; the next is allowed on `nextAllowedDay`.
    error CreditLimitChangeTooSoon(uint64 lineId, uint32 lastChangeDay, uint32 nextAllowedDay);

    error CreditLimitUnchanged(uint64 lineId, uint128 limit);

    error CreditNoPendingLimitChange(uint64 lineId);

    /// @notice The officer who proposed a limit change cannot approve it too.
    error CreditSecondOfficerRequired(uint64 lineId, address proposer);

    /// @notice The maturity day must be after `earliestDay`.
    error CreditMaturityInvalid(uint32 maturityDay, uint32 earliestDay);

    error CreditRateInvalid(uint16 rateBps);

    error CreditRateEffectiveDayInvalid(uint64 lineId, uint32 effectiveDay, uint32 today);

    /// @notice A rate change from `pendingDay` has not applied yet, so a later one must wait until it has.
    error CreditRateChangePending(uint64 lineId, uint32 pendingDay, uint32 effectiveDay);

    error CreditBorrowerInvalid(address borrower);

    /// @notice The facility holds only `liquidity` free tokens (locked balances excluded).
    error CreditInsufficientLiquidity(uint128 liquidity, uint128 requested);

    /// @notice A drawdown of at least the threshold must pay a registered payee directly.
    error CreditEntrustedPaymentRequired(uint64 lineId, uint128 amount, uint128 threshold);

    error CreditInvoiceHashMissing(uint64 lineId);

    /// @notice The day lies before the last day the line was brought up to date.
    error CreditDayInPast(uint32 day, uint32 lastDay);

    error CreditPoolNotFound(uint32 poolId);

    error CreditLineAlreadyInPool(uint64 lineId, uint32 poolId);

    error CreditLineNotInPool(uint64 lineId);

    error CreditPolicyInvalid(string reason);

    // The payout check in {IFundFlowRules} reverts with these; they are declared here as well so that
    // the facility's ABI alone decodes every reason a payout can fail.

    /// @notice The payee was never registered.
    error FundFlowPayeeNotRegistered(address payee);

    /// @notice The regulator froze the payee, so no credit money may reach it.
    error FundFlowPayeeFrozen(address payee, uint32 category);

    /// @notice The payee's category is on the regulator's blocked list.
    error FundFlowCategoryBlocked(address payee, uint32 category);

    /// @notice The drawdown has no locked balance (it was entrusted, or does not exist).
    error FundFlowDrawdownNotLocked(uint64 drawdownId);

    /// @notice The drawdown's locked balance is smaller than the payout.
    error FundFlowLockedBalanceInsufficient(uint64 drawdownId, uint128 locked, uint128 requested);

    /// @notice The line still holds locked money; pay it out or return it as repayment first.
    error FundFlowLockedBalanceRemaining(uint64 lineId, uint128 locked);

    /// @notice The caller is neither a bank operator nor a payout delegate of the line.
    error FundFlowNotPayoutDelegate(uint64 lineId, address account);

    // ---------------------------------------------------------------------------------------------
    // Events
    // ---------------------------------------------------------------------------------------------

    event LineApplied(
        uint64 indexed lineId,
        uint256 requestId,
        address indexed borrower,
        bytes32 applicationHash,
        uint128 limit,
        uint16 rateBps,
        uint32 maturityDay,
        address indexed submitter
    );
    event LineApproved(uint64 indexed lineId, uint256 requestId, address indexed officer);
    event LineRejected(uint64 indexed lineId, uint256 requestId, address indexed officer);
    event LineOpened(uint64 indexed lineId, uint256 requestId, uint32 openedDay, uint128 limit, uint32 maturityDay);

    /// @notice Principal grew by `amount`; `payee` is the entrusted payee, or zero for a locked drawdown.
    event LineDrawn(
        uint64 indexed lineId,
        uint256 requestId,
        uint64 indexed drawdownId,
        uint128 amount,
        address indexed payee,
        uint128 principalAfter,
        uint128 availableAfter
    );

    /// @notice Credit money left the facility for a payee, having passed rules version `rulesVersion`.
    event PayoutMade(
        uint64 indexed lineId,
        uint64 indexed drawdownId,
        address indexed payee,
        uint256 requestId,
        uint32 category,
        bytes32 invoiceHash,
        uint128 amount,
        uint64 rulesVersion,
        uint128 lockedAfter
    );

    /// @notice A self-directed drawdown's money was locked for the borrower inside the facility.
    event FundsLocked(uint64 indexed lineId, uint64 indexed drawdownId, uint128 amount, uint128 totalLockedAfter);

    /// @notice Locked money went back to the line as a repayment.
    event LockedFundsReturned(uint64 indexed lineId, uint64 indexed drawdownId, uint256 requestId, uint128 amount, uint128 lockedAfter);

    event InterestSettled(
        uint64 indexed lineId, uint32 settlementDay, uint128 amount, uint128 interestDueAfter, uint128 overdueAfter
    );
    event InterestOverdue(uint64 indexed lineId, uint32 dueDay, uint128 amount, uint128 overdueAfter);

    event Repaid(
        uint64 indexed lineId,
        uint256 requestId,
        uint128 amount,
        uint128 overduePaid,
        uint128 interestDuePaid,
        uint128 principalPaid,
        uint128 accruedPaid,
        uint128 principalAfter,
        uint128 interestDueAfter,
        uint128 overdueAfter
    );
    event RevolvingCycleCompleted(uint64 indexed lineId, uint16 revolvingCycles, bool reviewFlagged);
    event ReviewFlagCleared(uint64 indexed lineId, uint256 requestId, uint16 revolvingCycles, address indexed officer);

    event LimitChanged(
        uint64 indexed lineId, uint256 requestId, uint128 previousLimit, uint128 limit, address indexed officer, address approver
    );
    event LimitChangeProposed(uint64 indexed lineId, uint256 requestId, uint128 currentLimit, uint128 proposedLimit, address indexed officer);
    event LineRenewed(
        uint64 indexed lineId, uint256 requestId, uint32 maturityDay, uint128 limit, uint16 rateBps, uint32 rateEffectiveDay
    );
    event LineFrozen(uint64 indexed lineId, uint256 requestId, address indexed by, bool byRegulator);
    event LineUnfrozen(uint64 indexed lineId, uint256 requestId, address indexed by, bool byRegulator);
    event LineDefaulted(uint64 indexed lineId, uint256 requestId, uint128 principal, uint128 interestDue, uint128 overdueInterest);
    event LineWrittenOff(uint64 indexed lineId, uint256 requestId, uint128 amountWrittenOff);
    event RecoveryReceived(uint64 indexed lineId, uint256 requestId, uint128 amount, uint128 outstandingAfter);
    event LineClosed(uint64 indexed lineId, uint256 requestId, uint128 writtenOffUnrecovered);

    event PoolCreated(uint32 indexed poolId, uint256 requestId, uint128 limit);
    event PoolLimitChanged(uint32 indexed poolId, uint256 requestId, uint128 previousLimit, uint128 limit);
    event PoolMemberAdded(uint32 indexed poolId, uint64 indexed lineId, uint256 requestId, uint128 poolUsedAfter);
    event PoolMemberRemoved(uint32 indexed poolId, uint64 indexed lineId, uint256 requestId, uint128 poolUsedAfter);

    event PayoutDelegateSet(uint64 indexed lineId, address indexed delegate, uint256 requestId, bool allowed);
    event LiquidityFunded(address indexed from, uint256 requestId, uint128 amount, uint128 liquidityAfter);
    event LiquidityWithdrawn(address indexed to, uint256 requestId, uint128 amount, uint128 liquidityAfter);
    event PolicyUpdated(uint128 entrustedThreshold, uint16 maxLimitChangeBps, uint16 limitChangeIntervalDays, uint16 cycleThreshold, bool reviewRequired);

    // ---------------------------------------------------------------------------------------------
    // A line's life
    // ---------------------------------------------------------------------------------------------

    /// @notice Records an application with the hash of its off-chain file. Operator only.
    function applyForLine(
        uint256 requestId,
        address borrower,
        bytes32 applicationHash,
        uint128 limit,
        uint16 rateBps,
        uint32 maturityDay
    ) external returns (uint64 lineId);

    /// @notice Approves an application. Credit officer only, and not the one who submitted it.
    function approveLine(uint256 requestId, uint64 lineId) external;

    function rejectLine(uint256 requestId, uint64 lineId) external;

    /// @notice Opens an approved line for drawdowns from today. Credit officer only.
    function openLine(uint256 requestId, uint64 lineId) external;

    /**
     * @notice Draws `amount` on an active line. Operator only.
     * @param payee The registered payee for an entrusted payment, or zero to lock the money for the borrower.
     * @param invoiceHash The keccak256 hash of the invoice or contract an entrusted payment pays for.
     */
    function drawdown(uint256 requestId, uint64 lineId, uint128 amount, address payee, bytes32 invoiceHash)
        external
        returns (uint64 drawdownId);

    /// @notice Repays `amount`, taken from the caller: overdue interest, then interest due, then principal.
    function repay(uint256 requestId, uint64 lineId, uint128 amount) external;

    /// @notice Repays exactly the overdue interest and the interest due. Returns the amount paid.
    function repayInterest(uint256 requestId, uint64 lineId) external returns (uint128 amount);

    /// @notice Pays everything owed today, including interest accrued in the running period. Returns the amount.
    function payoff(uint256 requestId, uint64 lineId) external returns (uint128 amount);

    /// @notice Changes a limit within what one officer may do alone.
    function changeLimit(uint256 requestId, uint64 lineId, uint128 limit) external;

    /// @notice Proposes a limit change of any size, for a second officer to approve.
    function proposeLimitChange(uint256 requestId, uint64 lineId, uint128 limit) external;

    /// @notice Approves another officer's proposed limit change.
    function approveLimitChange(uint256 requestId, uint64 lineId) external;

    /**
     * @notice Renews an active line before maturity without repaying principal.
     * @param limit The new limit, or zero to keep the current one (a change follows the limit policy).
     * @param rateBps The new rate, or zero to keep the current one.
     * @param rateEffectiveDay The first day of the new rate; today or later.
     */
    function renewLine(
        uint256 requestId,
        uint64 lineId,
        uint32 maturityDay,
        uint128 limit,
        uint16 rateBps,
        uint32 rateEffectiveDay
    ) external;

    function freezeLine(uint256 requestId, uint64 lineId) external;

    function unfreezeLine(uint256 requestId, uint64 lineId) external;

    function clearReviewFlag(uint256 requestId, uint64 lineId) external;

    function declareDefault(uint256 requestId, uint64 lineId) external;

    /// @notice Writes off a defaulted line. Reverts with {FundFlowLockedBalanceRemaining} while money is locked.
    function writeOff(uint256 requestId, uint64 lineId) external;

    function recover(uint256 requestId, uint64 lineId, uint128 amount) external;

    function closeLine(uint256 requestId, uint64 lineId) external;

    // ---------------------------------------------------------------------------------------------
    // Fund-flow lock
    // ---------------------------------------------------------------------------------------------

    function payFromLocked(uint256 requestId, uint64 drawdownId, address payee, uint128 amount, bytes32 invoiceHash)
        external;

    function payFromLockedBatch(uint256 requestId, Payout[] calldata payouts) external;

    function repayFromLocked(uint256 requestId, uint64 drawdownId, uint128 amount) external;

    function setPayoutDelegate(uint256 requestId, uint64 lineId, address delegate, bool allowed) external;

    // ---------------------------------------------------------------------------------------------
    // Pools and liquidity
    // ---------------------------------------------------------------------------------------------

    function createPool(uint256 requestId, uint128 limit) external returns (uint32 poolId);

    function changePoolLimit(uint256 requestId, uint32 poolId, uint128 limit) external;

    function addPoolMember(uint256 requestId, uint32 poolId, uint64 lineId) external;

    function removePoolMember(uint256 requestId, uint64 lineId) external;

    function fundLiquidity(uint256 requestId, uint128 amount) external;

    function withdrawLiquidity(uint256 requestId, address to, uint128 amount) external;

    function updatePolicy(Policy calldata policy) external;

    // ---------------------------------------------------------------------------------------------
    // Regulator
    // ---------------------------------------------------------------------------------------------

    function regulatorFreezeLine(uint256 requestId, uint64 lineId) external;

    function regulatorUnfreezeLine(uint256 requestId, uint64 lineId) external;

    // ---------------------------------------------------------------------------------------------
    // Reads
    // ---------------------------------------------------------------------------------------------

    /// @notice The line's balances at `day` (today or later), with settlement and accrual applied.
    function lineState(uint64 lineId, uint32 day) external view returns (LineState memory);

    function payoffAmount(uint64 lineId, uint32 day) external view returns (uint128);

    function today() external view returns (uint32);

    function liquidity() external view returns (uint128);

    function totalLocked() external view returns (uint128);

    function lockedBalance(uint64 drawdownId) external view returns (uint64 lineId, uint128 amount);

    function isRequestUsed(uint256 requestId) external view returns (bool);

    function lineCount() external view returns (uint64);

    function policy() external view returns (Policy memory);

    function settlementDayOfMonth() external view returns (uint8);

    function penaltyMarkupPct() external view returns (uint16);

    function pool(uint32 poolId) external view returns (uint128 limit, uint128 used);
}
