"""Throughput of a local consortium before, during and after a validator joins (4→5),
and how long the join takes, under the saturating financing load of `godown bench`.

The load is signed up front in three parts on one nonce book: financing rounds, the
governance transactions that vote in a fifth organisation with its validator (card
with node key), more rounds. As soon as the vote executes, the newcomer's node starts
with state sync from the newest snapshot a member offers, follows by blocks and
votes once the new set governs. Figures come from the chain itself afterwards (block
times and sizes): tx/s up to the approving block, from it to the first block the new
set governs, and after; plus seconds from approval to the node's state installed,
to the new set governing, and to the first certificate the new node signed.

    python bench/membership_bench.py [--cases-before 300] [--cases-after 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.client.governance import proposal_body  # noqa: E402
from node.client.rpc import RpcClient  # noqa: E402
from node.client.txs import NonceBook, sign_tx  # noqa: E402
from node.load.loadgen import REPORTS_PER_CASE, drive_load  # noqa: E402
from node.load.workload import financing_workload  # noqa: E402
from node.tools.launcher import Consortium  # noqa: E402
from node.tools.node_init import init_node  # noqa: E402
from node.tools.participants import participants_of  # noqa: E402
from node.tools.testnet import Testnet, free_port_block, init_testnet  # noqa: E402
from primitives.card import MemberCard  # noqa: E402
from primitives.keys import KeyPair  # noqa: E402
from primitives.tx import SignedTx  # noqa: E402

SNAPSHOT_EVERY = 16


def _gov_phase(net: Testnet, book: NonceBook, card: MemberCard) -> list[SignedTx]:
    p = participants_of(net)
    body = proposal_body("join-bench", "member.add", {"card": card}, 2**52)
    txs = [sign_tx(p.warehouse, net.chain_id, book.take(p.warehouse), "gov.propose", body)]
    for voter in (p.bank, p.insurer, p.guarantor):
        vote = {"proposal": "join-bench", "approve": True}
        txs.append(sign_tx(voter, net.chain_id, book.take(voter), "gov.vote", vote))
    return txs


def _join(net: Testnet, cons: Consortium, ports: int, marks: dict[str, Any]) -> None:
    """The newcomer's operator: wait for the vote, take a member's snapshot offer, start."""
    c0 = RpcClient(net.nodes[0]["rpc_url"])
    while True:
        try:
            view = c0.get("/v1/proposals/join-bench")
            if view["state"] == "executed":
                break
        except Exception:  # not proposed yet
            pass
        time.sleep(0.05)
    marks["approved_at"] = time.monotonic()
    marks["effective_height"] = int(c0.get("/v1/validators")["pending"]["effective_height"])
    while (offer := c0.status().get("snapshot")) is None:
        time.sleep(0.05)
    home = net.dir / "bank5"
    trust = f"{offer['trust_height']}:{offer['trust_hash']}"
    cfg = init_node(net.dir / "genesis.json", home / "node_key.json", f"/ip4/127.0.0.1/tcp/{ports + 1}",
                    f"127.0.0.1:{ports}", home, "bank5", state_sync=trust, snapshot_every=SNAPSHOT_EVERY)  # fmt: skip
    entry = {"name": "bank5", "role": "bank", "member_id": cfg["member_id"], "rpc_url": f"http://127.0.0.1:{ports}",
             "config": "bank5/config.json", "data_dir": "bank5/data"}  # fmt: skip
    doc = json.loads((net.dir / "testnet.json").read_text())
    doc["nodes"].append(entry)
    (net.dir / "testnet.json").write_text(json.dumps(doc))
    cons.testnet = Testnet.load(net.dir)
    cons.start("bank5")
    c5 = RpcClient(entry["rpc_url"])
    c5.wait_ready(timeout=120)
    marks["started_at"] = time.monotonic()
    node_id = KeyPair.load(home / "node_key.json").id
    while int(c5.status()["height"]) <= marks["effective_height"]:
        time.sleep(0.05)
    marks["governs_at"] = time.monotonic()
    h = marks["effective_height"] + 1
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if node_id in {v[0] for v in c5.block(h)["commit"]["votes"]}:
                marks["votes_at"], marks["first_signed_height"] = time.monotonic(), h
                return
            h += 1
        except Exception:  # not there yet
            time.sleep(0.05)


def _rates(net: Testnet, approved: int, effective: int) -> dict[str, float]:
    """tx/s by block time: before the approving block, until the new set governs, after."""
    c = RpcClient(net.nodes[0]["rpc_url"])
    head = int(c.status()["height"])
    blocks = [(h, int((b := c.block(h))["header"]["time_ms"]), len(b["txs"])) for h in range(1, head + 1)]

    def rate(lo: int, hi: int) -> float:
        part = [x for x in blocks if lo < x[0] <= hi]
        if len(part) < 2:
            return 0.0
        span = (part[-1][1] - part[0][1]) / 1000
        return round(sum(n for _, _, n in part[1:]) / span, 1) if span > 0 else 0.0

    return {"before": rate(0, approved), "during": rate(approved, effective), "after": rate(effective, head)}


def main() -> None:
    ap = argparse.ArgumentParser(description="throughput around a 4→5 validator change")
    ap.add_argument("--cases-before", type=int, default=300)
    ap.add_argument("--cases-after", type=int, default=1200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="godown-membership-bench-"))
    try:
        net = init_testnet(work / "net", nodes=4, chain_id="bench-membership")
        for n in net.nodes:  # snapshots often enough that one is fresh when the newcomer asks
            path = net.config_path(n)
            cfg = json.loads(path.read_text())
            cfg["snapshots"] = {"every": SNAPSHOT_EVERY}
            path.write_text(json.dumps(cfg))
        home = net.dir / "bank5"
        member, node = KeyPair.generate("bank5", "bank"), KeyPair.generate("bank5-node", "node")
        node.save(home / "node_key.json")
        ports = free_port_block(2, start=45000 + secrets.randbelow(5000))
        card = MemberCard.make(member, node, f"/ip4/127.0.0.1/tcp/{ports + 1}")
        with Consortium(net) as cons:
            cons.start_all()
            cons.wait_ready()
            p = participants_of(net)
            book = NonceBook()
            phases = financing_workload(p, net.chain_id, args.cases_before, REPORTS_PER_CASE, tag="a", nonces=book)
            phases.append(_gov_phase(net, book, card))
            phases += financing_workload(p, net.chain_id, args.cases_after, REPORTS_PER_CASE, tag="b", nonces=book)
            marks: dict[str, Any] = {}
            joiner = threading.Thread(target=_join, args=(net, cons, ports, marks), daemon=True)
            joiner.start()
            figures = asyncio.run(drive_load(net, phases, 0, 600))
            joiner.join(timeout=120)
            c0 = RpcClient(net.nodes[0]["rpc_url"])
            approved = int(c0.tx(phases[_gov_index(phases)][-1].tx_id_hex)["height"])
            rates = _rates(net, approved, marks["effective_height"])
        t0 = marks["approved_at"]
        print(json.dumps({"bench": "membership_4_to_5", "committed": figures["committed"],
                          "tx_s_overall": figures["tx_s"],
                          "tx_s_before": rates["before"], "tx_s_during": rates["during"], "tx_s_after": rates["after"],
                          "approved_height": approved, "effective_height": marks["effective_height"],
                          "approval_to_node_started_s": round(marks["started_at"] - t0, 2),
                          "approval_to_new_set_governs_s": round(marks["governs_at"] - t0, 2),
                          "approval_to_first_signed_certificate_s": _since(marks, "votes_at", t0),
                          "first_signed_height": marks.get("first_signed_height")}))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _since(marks: dict[str, Any], key: str, t0: float) -> float | None:
    return round(marks[key] - t0, 2) if key in marks else None


def _gov_index(phases: list[list[SignedTx]]) -> int:
    return next(i for i, ph in enumerate(phases) if ph and ph[0].tx.type == "gov.propose")


if __name__ == "__main__":
    main()
