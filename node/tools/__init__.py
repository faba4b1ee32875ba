"""Operator and auditor tools: a local testnet and its launcher, the demo, the
audit replay."""
