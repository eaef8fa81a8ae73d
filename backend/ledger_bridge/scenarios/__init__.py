"""Scenario replay: a YAML file of dated bank and regulator actions, replayed through the bridge.

`loading` reads and validates a file into the `model` classes, and
`timeline` orders the steps of one or more scenarios on one clock. `runner`
sends the steps through the bridge's HTTP API (`client`) while `clock` moves
the chain's time. `report` turns the auditor's history into the JSON report.
`stack` starts a fresh local chain and bridge for a run.
"""
