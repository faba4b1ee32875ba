"""A consortium whose every node prunes its history (`history.keep_blocks`): under load
each keeps only its newest blocks, a backup killed and restarted within the window
catches up by blocks from pruned peers, all agree on every height they still hold, the
pruned heights are `410 history_unavailable`, an audit is refused, and each store passes
the full integrity check after the run."""

from __future__ import annotations

import json

import pytest

from node.client.rpc import RpcClient
from primitives.errors import Code, GodownError
from storage.chain import ChainStore
from tests.e2e.manifests import BackgroundLoad, MakeNet, Manifest, Net, emit
from tests.node.conftest import http

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

KEEP = 100  # the shortest window a node accepts (snapshots every 20 need 60)
SNAPSHOT_EVERY = 20


def _prune_all(net: Net) -> None:
    for node in net.testnet.nodes:
        path = net.testnet.config_path(node)
        doc = json.loads(path.read_text())
        doc["history"] = {"keep_blocks": KEEP}
        doc["snapshots"] = {"every": SNAPSHOT_EVERY}
        path.write_text(json.dumps(doc, indent=2))


def _gone(client: RpcClient, height: int) -> bool:
    try:
        client.block(height)
    except GodownError as exc:
        return exc.code is Code.HISTORY_UNAVAILABLE
    return False


def test_pruning_nodes_agree_and_a_restarted_backup_catches_up(make_net: MakeNet) -> None:
    net = make_net(Manifest("pruning"))
    _prune_all(net)
    net.start()
    primary = net.primary()
    victim = next(n for n in reversed(net.names) if n != primary)
    others = [n for n in net.names if n != victim]

    with BackgroundLoad(net, via=others, cases=2, reports_per_case=6) as load:
        net.wait_heights(KEEP // 2, net.names, timeout=90)
        net.kill(victim)
        killed_at = max(net.heights(others).values())
        net.wait_heights(killed_at + KEEP // 2, others, timeout=90)  # behind, but within every window
        net.start_node(victim)
        net.wait_heights(killed_at + KEEP + 40, net.names, timeout=120)  # well past the first window
    assert load.error is None, load.error

    head = net.wait_settled(net.names)
    clients = {n: net.client(n) for n in net.names}
    try:
        low = head - KEEP + 3  # every node has pruned below this (each commit prunes up to two heights)
        for h in range(low, head + 1):
            hashes = {n: c.block(h)["hash"] for n, c in clients.items()}
            assert len(set(hashes.values())) == 1, (h, hashes)
        for n, c in clients.items():
            assert _gone(c, 1) and _gone(c, head - KEEP - 5), n
    finally:
        for c in clients.values():
            c.close()
    audit = http(net.node(primary)["rpc_url"], "POST", "/v1/audit", b"")
    assert (audit.status, audit.code) == (422, "bad_config"), audit  # no history from genesis to replay

    net.stop_all()
    for node in net.testnet.nodes:
        store = ChainStore.open_path(net.testnet.dir / node["data_dir"] / "chain", deep_blocks=None)
        try:
            assert head - KEEP - 2 <= store.base_height <= head - KEEP, (node["name"], store.base_height)
            assert store.head_height == head and store.get_block(store.base_height) is None
        finally:
            store.close()
    emit("pruning_consortium", head=head, keep_blocks=KEEP, victim_behind=KEEP // 2)
