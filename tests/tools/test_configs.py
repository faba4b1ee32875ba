"""configs/ is what it claims: its genesis is rebuilt, byte for byte in hash, from its
cards by the ceremony's own steps, and every host config belongs to a validator."""

from __future__ import annotations

import json
from pathlib import Path

from node.server.config import NodeConfig
from node.tools.ceremony import add_card, new_genesis, verify_genesis
from primitives.genesis import Genesis

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ORDER = ("warehouse", "bank", "insurer", "guarantor")


def test_genesis_rebuilds_from_the_cards(tmp_path: Path) -> None:
    shipped = Genesis.load(CONFIGS / "genesis.json")
    rebuilt = tmp_path / "genesis.json"
    new_genesis(rebuilt, shipped.chain_id, shipped.policy, shipped.consensus, shipped.genesis_time_ms)
    for org in ORDER:
        add_card(rebuilt, CONFIGS / "cards" / f"{org}.card.json")
    assert Genesis.load(rebuilt).hash() == shipped.hash()
    assert verify_genesis(CONFIGS / "genesis.json")["genesis_hash"] in (CONFIGS / "README.md").read_text()


def test_every_host_config_is_a_validators() -> None:
    genesis = Genesis.load(CONFIGS / "genesis.json")
    members = {v.member for v in genesis.validators}
    seen = set()
    for org in ORDER:
        path = CONFIGS / "hosts" / org / "config.json"
        cfg = NodeConfig.load(path)
        assert cfg.genesis == (CONFIGS / "genesis.json").resolve()
        assert cfg.member_id in members and "peers" not in json.loads(path.read_text())
        seen.add(cfg.member_id)
    assert seen == members
