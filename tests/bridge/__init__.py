"""Tests of the ledger bridge (backend/ledger_bridge)."""
