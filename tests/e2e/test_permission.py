"""Manifest 5: a libp2p peer whose key is not in genesis dials a validator and
sends frames; it is refused at the Noise handshake and changes nothing."""

from __future__ import annotations

import re
import time

import pytest

from node.tools.testnet import free_port_block
from p2p.identity import peer_id, peer_id_str
from p2p.service import P2PService
from primitives import codec
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair
from tests.e2e.manifests import MakeNet, Manifest, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _intruder_key(target_pub: bytes) -> KeyPair:
    """A fresh key whose peer id sorts below the target's, so the intruder is the one that dials."""
    while True:
        key = KeyPair.generate("intruder", "bank")
        if peer_id(key.sign_pub).to_bytes() < peer_id(target_pub).to_bytes():
            return key


def test_peer_not_in_genesis_is_refused(make_net: MakeNet) -> None:
    net = make_net(Manifest("intruder"))
    net.start()
    acks = net.run_round(via=net.names, cases=1, reports_per_case=2)
    head = max(a.height for a in acks)
    net.wait_heights(head, net.names, timeout=30)
    net.wait_settled(net.names)  # the certifying empty block is in: nothing more comes
    before = {n: net.status(n) for n in net.names}

    target = net.node(net.names[1])
    target_key = net.testnet.node_key(target["name"])
    key = _intruder_key(target_key.sign_pub)
    pid = peer_id_str(key.sign_pub)
    # frames a member could send: gossip of a valid, signed transaction and garbage
    forged = net.load.next_round(cases=1, reports_per_case=1)[0][0]
    frames = [
        codec.encode({"t": "x", "txs": [forged.encode()]}),
        codec.encode({"t": "f", "from": 1, "to": head}),
        b"\x00not msgpack",
    ]
    service = P2PService(
        key.sign_seed, free_port_block(1, start=41000), {target["node_id"]: (target_key.sign_pub, target["p2p_addr"])}
    )
    service.start()
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            for f in frames:
                service.send(target["node_id"], f)
            time.sleep(0.5)
        refused = re.compile(r"refused peer not in allowlist: peer_id=" + re.escape(pid))
        assert wait_until(lambda: bool(refused.search(net.log(target["name"]))), timeout=10), (
            f"no refusal for {pid} in {target['name']}'s log"
        )
        assert service.connected_peers() == []
        assert all(s.sent_frames == 0 for s in service.stats())
    finally:
        service.stop()

    time.sleep(1.0)  # anything that had got through would have been gossiped and proposed by now
    for n in net.names:
        after = net.status(n)
        assert (after["height"], after["head_hash"], after["state_root"]) == (
            before[n]["height"],
            before[n]["head_hash"],
            before[n]["state_root"],
        ), n
        assert after["mempool"] == 0, (n, after["mempool"])
        c = net.client(n)
        try:
            with pytest.raises(GodownError) as refused_tx:
                c.tx(forged.tx_id_hex)
            assert refused_tx.value.code is Code.NOT_FOUND
        finally:
            c.close()
    line = next(ln for ln in net.log(target["name"]).splitlines() if pid in ln)
    print(line)
