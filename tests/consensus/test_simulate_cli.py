"""`godown simulate`: JSON lines, a summary line, and a non-zero exit on a violation."""

from __future__ import annotations

import json

from click.testing import CliRunner

from node.commands.simulate import simulate

FIELDS = {
    "nodes",
    "f",
    "seed",
    "byzantine",
    "crashed",
    "committed_blocks",
    "agreement",
    "liveness",
    "view_changes",
    "messages",
    "messages_per_block",
    "virtual_ms",
    "wall_ms",
}


def test_runs_print_json_lines_and_a_summary() -> None:
    res = CliRunner().invoke(
        simulate,
        [
            "--nodes",
            "4",
            "--byzantine",
            "1",
            "--seeds",
            "3",
            "--blocks",
            "5",
            "--drop",
            "0.05",
            "--partition",
            "--crash",
            "1",
        ],
    )
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.output.splitlines()]
    assert len(lines) == 4
    assert all(set(doc) == FIELDS for doc in lines[:3])
    assert [doc["seed"] for doc in lines[:3]] == [0, 1, 2]
    assert all(doc["agreement"] and doc["liveness"] and doc["committed_blocks"] >= 5 for doc in lines[:3])
    assert lines[3]["summary"] and lines[3]["passed"] == 3 and lines[3]["failed_seeds"] == []


def test_a_violation_exits_non_zero_with_its_seed() -> None:
    # Two Byzantine replicas of four exceed f=1: seed 3 loses liveness.
    res = CliRunner().invoke(simulate, ["--nodes", "4", "--byzantine", "2", "--blocks", "5", "--seed", "3"])
    assert res.exit_code == 1
    assert "seed 3: liveness" in res.output
