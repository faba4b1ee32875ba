"""The client library across a node restart (a real `godown node start` subprocess,
killed with SIGKILL mid-subscription and started again on the same data dir): the
event subscription reconnects with back-off and resumes where it was, missing and
repeating nothing, and a device report sealed before the crash is delivered as the
same signed bytes once the node is back."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from node.client import Backoff, Client, Delivery, DeviceReporter, EventStream, Signer, builders
from node.tools.participants import Participants
from node.tools.testnet import Testnet as NetDir
from primitives.keys import KeyPair
from tests.node.conftest import WAIT, NodeProcess

pytestmark = pytest.mark.timeout(300)


def rate(client: Client, signer: Signer, p: Participants) -> int:
    body = builders.rating_issue(subject=p.borrower.id, grade="A", valid_until_ms=2**50, report_hash=bytes(32))
    answer = client.submit(signer.sign(body), wait_ms=30_000)
    assert answer.committed and answer.result == "ok" and answer.height is not None
    return answer.height


def through_tx_of(stream: EventStream, height: int, got: list[dict[str, Any]]) -> None:
    """Read events into `got` through the transaction event of `height`."""
    while not (got and got[-1]["height"] == height and got[-1]["kind"] == "tx"):
        got.append(stream.next(timeout=WAIT))


def test_subscription_and_reporter_survive_a_node_restart(
    testnet: NetDir, node_process: NodeProcess, participants: Participants
) -> None:
    p, url = participants, testnet.rpc_urls[0]
    client = Client(url)
    device = KeyPair.generate("door-1", "device")
    warehouse, bank = Signer.for_node(client, p.warehouse), Signer.for_node(client, p.bank)
    reg = builders.device_register(device=device.id, sign_pub=device.sign_pub, zone="zone-a", kind="door")
    assert client.submit(warehouse.sign(reg), wait_ms=30_000).result == "ok"
    assert client.submit(bank.sign(builders.device_accept(device=device.id)), wait_ms=30_000).result == "ok"
    reporter = DeviceReporter(client, device, "", {p.warehouse.id: p.warehouse.enc_pub}, retries=60)

    got: list[dict[str, Any]] = []
    with client.subscribe(from_height=1, kinds=("block", "tx"), backoff=Backoff(0.05, 0.5)) as stream:
        for _ in range(3):
            height = rate(client, bank, p)
        through_tx_of(stream, height, got)

        node_process.kill()  # mid-subscription, no goodbye
        sealed = reporter.seal("heartbeat", {"battery": 97})
        delivered: list[Delivery] = []
        sender = threading.Thread(target=lambda: delivered.append(reporter.send(sealed)), daemon=True)
        sender.start()  # retries on `unavailable` while the node is down
        node_process.start()
        node_process.wait_ready(url)
        sender.join(WAIT)
        assert delivered and delivered[0].signed == sealed
        assert delivered[0].answer.committed and delivered[0].answer.result == "ok"
        assert client.tx(sealed.tx_id_hex).signed == sealed

        for _ in range(2):
            height = rate(client, bank, p)
        through_tx_of(stream, height, got)
        assert stream.reconnects >= 1

    blocks = [e["height"] for e in got if e["kind"] == "block"]
    assert blocks == list(range(1, height + 1))  # no gap, no repeat across the restart
    assert any(e.get("tx_id") == sealed.tx_id_hex for e in got)
    with client.subscribe(from_height=1, kinds=("block", "tx")) as fresh:
        assert [fresh.next(timeout=WAIT) for _ in got] == got  # exactly what a replay gives
    client.close()
