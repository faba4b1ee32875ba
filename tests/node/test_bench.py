"""`godown bench` against a real single-validator node: every submitted transaction
commits with `ok`, twice in a row on the same chain (nonces and ids continue)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from node.load.loadgen import TXS_PER_CASE, run_bench
from tests.node.conftest import NodeProcess, run_cli

if TYPE_CHECKING:  # imported for the annotation only: pytest would try to collect a class named Test*
    from node.tools.testnet import Testnet


def test_bench_commits_everything_and_can_run_again(testnet: Testnet, node_process: NodeProcess) -> None:
    first = run_bench(str(testnet.dir), duration=30, rate=0, cases=3)
    assert first["nodes"] == 1
    assert first["submitted"] == first["committed"] == 2 + 3 * TXS_PER_CASE  # two ratings, then the cases
    assert first["rejected"] == 0 and first["rejections"] == {}
    assert first["tx_s"] > 0 and first["p50_ms"] is not None and first["p50_ms"] <= first["p99_ms"]
    proc = run_cli("bench", "--testnet", str(testnet.dir), "--duration", "30", "--cases", "2")
    assert proc.returncode == 0, proc.stderr
    second = json.loads(proc.stdout.strip().splitlines()[-1])
    assert second["committed"] == second["submitted"] == 2 + 2 * TXS_PER_CASE and second["rejected"] == 0
