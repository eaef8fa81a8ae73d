"""Fault-injection runs that check the bridge neither loses nor repeats a write."""
