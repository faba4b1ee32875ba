"""A single-validator node as a real `godown node start` subprocess: a clean stop and
restart keeps height, head and state root and goes on committing; a kill -9 under
load loses nothing that was acknowledged as committed; a store damaged while the
node was stopped is refused at start with `store_damaged`, no traceback.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from node.client.rpc import RpcClient
from node.tools.testnet import Testnet as NetDir
from primitives.errors import GodownError
from primitives.keys import KeyPair
from primitives.tx import SignedTx, Tx
from tests.node.conftest import WAIT, NodeProcess, make_testnet, wait_until

pytestmark = pytest.mark.timeout(300)


class Ratings:
    """Valid `rating.issue` transactions from the bank, with consecutive nonces."""

    def __init__(self, net: NetDir, start_nonce: int = 0) -> None:
        self.net = net
        self.bank = net.key("bank")
        self.subject = net.key("borrower").id
        self.nonce = start_nonce

    def next(self) -> SignedTx:
        body = {"subject": self.subject, "grade": "A", "valid_until_ms": 2**50, "report_hash": bytes(32)}
        stx = Tx(self.net.chain_id, "rating.issue", self.bank.id, self.nonce, body).sign(self.bank)
        self.nonce += 1
        return stx

    def batch(self, n: int) -> list[SignedTx]:
        return [self.next() for _ in range(n)]


def commit_batches(client: RpcClient, ratings: Ratings, batches: int, size: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(batches):
        answers = client.submit_many(ratings.batch(size), wait_ms=10_000)
        assert all(a["code"] == "committed" and a["result"] == "ok" for a in answers), answers
        out += answers
    return out


def fingerprint(client: RpcClient) -> tuple[int, str, str]:
    s = client.status()
    return int(s["height"]), str(s["head_hash"]), str(s["state_root"])


def no_traceback(proc: NodeProcess) -> None:
    assert "Traceback" not in proc.stderr(), proc.stderr()[-3000:]


@pytest.fixture
def net(tmp_path: Path) -> NetDir:
    return make_testnet(tmp_path / "net")


@pytest.fixture
def node(net: NetDir, tmp_path: Path) -> Iterator[NodeProcess]:
    proc = NodeProcess(net.config_path(net.nodes[0]), tmp_path)
    try:
        yield proc
    finally:
        try:
            proc.terminate()
        finally:
            proc.kill()


def test_sigterm_and_restart_keep_the_chain_and_go_on_committing(net: NetDir, node: NodeProcess) -> None:
    url = net.rpc_urls[0]
    node.start()
    node.wait_ready(url)
    client = RpcClient(url)
    ratings = Ratings(net)
    answers = commit_batches(client, ratings, batches=4, size=25)
    wait_until(lambda: client.status()["state_certified"], what="the certifying empty block")  # then it is quiet
    before = fingerprint(client)
    assert before[0] >= 4
    client.close()
    assert node.terminate() == 0
    no_traceback(node)

    node.start()
    node.wait_ready(url)
    client = RpcClient(url)
    assert fingerprint(client) == before
    for a in answers[::10]:
        got = client.tx(a["tx_id"])
        assert (got["height"], got["index"], got["result"]) == (a["height"], a["index"], "ok")
    assert client.next_nonce(ratings.bank.id) == ratings.nonce
    more = commit_batches(client, ratings, batches=2, size=10)
    assert min(a["height"] for a in more) > before[0]  # (the block at before+1 may be the certifying empty one)
    after = fingerprint(client)
    assert after[0] > before[0] and after[1:] != before[1:]
    assert client.block(before[0] + 1)["header"]["prev_hash"] == before[1]
    assert client.block(before[0] + 1)["header"]["state_root"] == before[2]
    client.close()
    assert node.terminate() == 0
    no_traceback(node)


def test_kill_9_under_load_loses_nothing_acknowledged(net: NetDir, node: NodeProcess) -> None:
    url = net.rpc_urls[0]
    node.start()
    node.wait_ready(url)
    acked: list[dict[str, Any]] = []
    stop = threading.Event()
    errors: list[BaseException] = []
    ratings = Ratings(net)

    def load() -> None:
        client = RpcClient(url, timeout=5)
        try:
            while not stop.is_set():
                answers = client.submit_many(ratings.batch(20), wait_ms=5_000)
                acked.extend(a for a in answers if a["code"] == "committed")
        except GodownError:
            pass  # the node is gone
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_until(lambda: len(acked) >= 200, what="200 acknowledged commits")
        node.kill()  # SIGKILL while the loader is still submitting
    finally:
        stop.set()
        loader.join(WAIT)
    assert not loader.is_alive() and not errors, errors
    assert len(acked) >= 200

    node.start()
    node.wait_ready(url)
    client = RpcClient(url)
    height = int(client.status()["height"])
    assert height >= max(a["height"] for a in acked)
    for a in acked:
        got = client.tx(a["tx_id"])
        assert (got["status"], got["height"], got["index"], got["result"]) == (
            "committed",
            a["height"],
            a["index"],
            a["result"],
        )
    # the chain is whole: every block links to the one before
    prev = None
    for h in range(1, height + 1):
        header = client.block(h)["header"]
        if prev is not None:
            assert header["prev_hash"] == prev
        prev = client.block(h)["hash"]
    # and the node goes on from where its disk says it is
    nonce = client.next_nonce(ratings.bank.id)
    more = commit_batches(client, Ratings(net, start_nonce=nonce), batches=1, size=5)
    assert min(a["height"] for a in more) > height
    assert client.block(height + 1)["header"]["prev_hash"] == prev
    client.close()


def _put(chain_dir: Path, prefix: bytes, change: Any) -> bytes:
    """Rewrite the first record under `prefix` with `change(key, value)`; returns its key."""
    db = plyvel.DB(str(chain_dir))
    try:
        key, value = next(iter(db.iterator(prefix=prefix)))
        db.put(key, change(key, value))
        return bytes(key)
    finally:
        db.close()


def _flip_last_byte(key: bytes, value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 0x01])


DAMAGE = {
    "block record": (b"B:", _flip_last_byte),
    "state entry": (b"S:", _flip_last_byte),
    "commit certificate": (b"C:", lambda k, v: v[:-1]),
    "header": (b"H:", _flip_last_byte),
}


def test_damaged_stores_are_refused_at_start(net: NetDir, node: NodeProcess, tmp_path: Path) -> None:
    url = net.rpc_urls[0]
    node.start()
    node.wait_ready(url)
    client = RpcClient(url)
    commit_batches(client, Ratings(net), batches=3, size=5)
    client.close()
    assert node.terminate() == 0
    for name, (prefix, change) in DAMAGE.items():
        copy = tmp_path / name.replace(" ", "-")
        shutil.copytree(net.dir, copy)
        _put(copy / net.nodes[0]["data_dir"] / "chain", prefix, change)
        damaged = NodeProcess(copy / net.nodes[0]["config"], copy)
        damaged.start()
        try:
            code = damaged.wait_exit(WAIT)
        finally:
            damaged.kill()
        err = damaged.stderr()
        assert code != 0, name
        assert "store_damaged" in err, (name, err[-2000:])
        assert "Traceback" not in err, (name, err[-3000:])
        assert any(line.startswith("error [store_damaged]: ") for line in err.splitlines()), (name, err)
    # the undamaged original still starts
    node.start()
    node.wait_ready(url)
    assert RpcClient(url).status()["height"] >= 3


def test_a_second_node_on_the_same_store_is_refused(net: NetDir, node: NodeProcess, tmp_path: Path) -> None:
    node.start()
    node.wait_ready(net.rpc_urls[0])
    other = NodeProcess(net.config_path(net.nodes[0]), tmp_path / "second")
    (tmp_path / "second").mkdir()
    other.start()
    try:
        code = other.wait_exit(WAIT)
    finally:
        other.kill()
    assert code == 1 and "Traceback" not in other.stderr(), other.stderr()
    assert "error [bad_config]" in other.stderr()
    assert RpcClient(net.rpc_urls[0]).status()["height"] == 0  # the first node is unharmed


def test_node_key_not_in_genesis_is_refused(net: NetDir, tmp_path: Path) -> None:
    """A config whose node key is no validator's in genesis: refused with bad_config, no traceback."""
    cfg_path = net.config_path(net.nodes[0])
    KeyPair.generate("impostor", "node").save(cfg_path.parent / "node_key.json")
    proc = NodeProcess(cfg_path, tmp_path)
    proc.start()
    try:
        code = proc.wait_exit(WAIT)
    finally:
        proc.kill()
    assert code == 1 and "Traceback" not in proc.stderr()
    assert "error [bad_config]" in proc.stderr()
