"""`godown bench` against real nodes: a single validator, where every submitted
transaction commits with `ok`, twice in a row on the same chain (nonces and ids
continue); and a local 4-node consortium with nodes stopped, measured on the nodes
that answer while a quorum does, refused with a stable code once it does not."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from node.load.loadgen import TXS_PER_CASE, run_bench
from node.tools.launcher import Consortium
from node.tools.testnet import init_testnet
from tests.node.conftest import NodeProcess, run_cli

if TYPE_CHECKING:  # imported for the annotation only: pytest would try to collect a class named Test*
    from node.tools.testnet import Testnet


def test_bench_commits_everything_and_can_run_again(testnet: Testnet, node_process: NodeProcess) -> None:
    first = run_bench(str(testnet.dir), duration=30, rate=0, cases=3)
    assert first["nodes"] == first["nodes_measured"] == 1 and first["down"] == []
    assert first["submitted"] == first["committed"] == 2 + 3 * TXS_PER_CASE  # two ratings, then the cases
    assert first["rejected"] == 0 and first["rejections"] == {}
    assert first["tx_s"] > 0 and first["p50_ms"] is not None and first["p50_ms"] <= first["p99_ms"]
    proc = run_cli("bench", "--testnet", str(testnet.dir), "--duration", "30", "--cases", "2")
    assert proc.returncode == 0, proc.stderr
    second = json.loads(proc.stdout.strip().splitlines()[-1])
    assert second["committed"] == second["submitted"] == 2 + 2 * TXS_PER_CASE and second["rejected"] == 0


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_bench_measures_the_nodes_up_and_refuses_without_a_quorum(tmp_path: Path) -> None:
    net = init_testnet(tmp_path / "net", nodes=4, chain_id="bench-degraded")
    first_down, second_down = net.nodes[-1]["name"], net.nodes[-2]["name"]  # never the primary of view 0
    with Consortium(net) as cons:
        cons.start_all()
        cons.wait_ready(timeout=90)
        cons.kill(first_down)
        figures = run_bench(str(net.dir), duration=30, cases=1, wait_s=10)
        assert figures["nodes"] == 4 and figures["nodes_measured"] == 3 and figures["down"] == [first_down]
        assert figures["submitted"] == figures["committed"] == 2 + TXS_PER_CASE and figures["rejected"] == 0
        assert figures["p50_ms"] is not None

        cons.kill(second_down)  # two of four: no quorum, nothing can commit
        proc = run_cli("bench", "--testnet", str(net.dir), "--duration", "5", "--wait", "2")
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr.startswith("error [unavailable]: 2 validators answer, a quorum needs 3"), proc.stderr
        assert first_down in proc.stderr and second_down in proc.stderr and "Traceback" not in proc.stderr
