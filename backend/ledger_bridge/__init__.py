"""HTTP bridge between bank systems and the revolving-credit ledger contracts."""
