"""Tests of the bridge against a real Anvil chain with the deployed contracts."""
