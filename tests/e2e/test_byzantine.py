"""One Byzantine validator of four, in the real node (`node start --misbehave KIND`, a test
switch): it cannot fork the consortium, stall it, grow the others' memory, or keep one
member's transactions out. Every scenario ends with the correct nodes agreeing block by
block; each prints its figures as JSON lines (`pytest -s`)."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from node.client.rpc import RpcClient
from node.client.txs import sign_tx
from node.tools.participants import Participants
from primitives.errors import GodownError
from primitives.keys import KeyPair
from primitives.tx import SignedTx
from tests.e2e.manifests import MakeNet, Manifest, Net, emit, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

FAR_FUTURE_MS = 4_102_444_800_000


def byzantine(make_net: MakeNet, name: str, kind: str | Callable[[Net], str], who: int) -> Net:
    """A 4-node testnet whose node `who` (0 is the primary of view 0) misbehaves; started.
    `kind` may depend on the testnet (e.g. which member to censor)."""
    net = make_net(Manifest(name, view_change_timeout_ms=1000))
    bad = net.names[who]
    net.cons.args[bad] = ["--misbehave", kind if isinstance(kind, str) else kind(net)]
    net.cons.env[bad] = {"GODOWN_TEST_SWITCHES": "1"}
    net.start()
    assert "MISBEHAVING" in net.log(bad)
    return net


def rating(p: Participants, net: Net, signer: KeyPair, n: int) -> SignedTx:
    body = {
        "subject": p.borrower.id,
        "grade": "A",
        "valid_until_ms": FAR_FUTURE_MS,
        "report_hash": hashlib.sha256(f"{signer.id}:{n}".encode()).digest(),
    }
    return sign_tx(signer, net.testnet.chain_id, net.load.nonces.take(signer), "rating.issue", body)


@contextmanager
def rating_stream(net: Net, signer: KeyPair, via: str, per_s: float = 20.0) -> Iterator[list[tuple[float, str]]]:
    """`signer`'s ratings submitted to `via` at a steady pace while the block runs; yields
    (submitted at, tx id) of each one accepted."""
    sent: list[tuple[float, str]] = []
    stop = threading.Event()

    def run() -> None:
        c = net.client(via)
        n = 0
        while not stop.is_set():
            stx = rating(net.load.participants, net, signer, n)
            n += 1
            try:
                c.submit(stx)
                sent.append((time.monotonic(), stx.tx_id_hex))
            except GodownError:
                pass
            stop.wait(1 / per_s)
        c.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join(timeout=30)


def committed(client: RpcClient, tx_id: str) -> dict[str, object] | None:
    try:
        doc = client.tx(tx_id)
    except GodownError:
        return None  # not known (yet) at this node
    return doc if doc.get("status") == "committed" else None


def agree(net: Net, names: list[str]) -> int:
    """The correct nodes reach one head and agree on every block up to it."""
    head = max(net.heights(names).values())
    net.wait_heights(head, names, timeout=60)
    net.assert_agreement(names, head)
    return head


def test_censoring_primary_loses_its_view(make_net: MakeNet) -> None:
    """The primary leaves out every transaction of the bank while committing the insurer's:
    the bank's transaction, submitted to a correct backup, passes its deadline there, the
    backups change the view, and the next primary commits it."""
    net = byzantine(make_net, "censor", lambda n: "censor:" + n.load.participants.bank.id, who=0)
    p = net.load.participants
    correct = net.names[1:]
    with rating_stream(net, p.insurer, via="insurer") as others:
        wait_until(lambda: len(others) >= 20, timeout=30)
        client = net.client("bank")
        stx = rating(p, net, p.bank, 0)
        submitted_height = int(client.status()["height"])
        started = time.monotonic()
        answer = client.submit(stx)
        assert answer.get("code") == "accepted", answer
        assert wait_until(lambda: committed(client, stx.tx_id_hex) is not None, timeout=60), "censored for 60 s"
        took = time.monotonic() - started
        doc = committed(client, stx.tx_id_hex)
        assert doc is not None and doc["result"] == "ok", doc
        # others' transactions kept committing while the bank's waited
        kept = int(doc["height"]) - submitted_height - 1  # type: ignore[call-overload]
    status = net.status("bank")
    assert status["view"] >= 1 and net.name_of(status["primary"]) != net.names[0]
    assert kept >= 1, "nothing else committed while the bank's transaction waited: that was no censorship"
    overdue = sum(_metric(net, n, "godown_requests_overdue_total") for n in correct)
    assert overdue >= 1
    agree(net, correct)
    emit("censorship", seconds_to_commit=round(took, 2), blocks_of_others_meanwhile=kept, view=status["view"])


def _metric(net: Net, name: str, metric: str) -> float:
    """A counter's value from a node's /metrics (0 if absent)."""
    c = net.client(name)
    try:
        text = str(c.get("/metrics"))
    finally:
        c.close()
    for line in text.splitlines():
        if line.startswith(metric + " ") or line.startswith(metric + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_equivocating_primary_cannot_fork(make_net: MakeNet) -> None:
    """The primary sends one block to half the backups and another, for the same view and
    height, to the rest: neither gathers a commit quorum on its own side alone, the view
    changes, and every correct node commits one and the same chain."""
    net = byzantine(make_net, "equivocate", "equivocate", who=0)
    correct = net.names[1:]
    acks = net.run_round(via=correct, cases=2, reports_per_case=3)
    head = agree(net, correct)
    views = {n: int(net.status(n)["view"]) for n in correct}
    emit("equivocation", txs=len(acks), head=head, views=views)
    assert all(v >= 1 for v in views.values()), f"the equivocating primary kept its view: {views}"


def test_forged_copies_do_not_stand_for_real_transactions(make_net: MakeNet) -> None:
    """The primary puts a copy of a pending transaction with a forged signature into each
    block. The copy is refused (bad_signature) in its block and does not count as the
    transaction's commit: the sender's real transaction still commits, with its own result."""
    net = byzantine(make_net, "forge", "forge", who=0)
    p = net.load.participants
    client = net.client("bank")
    stxs = [rating(p, net, p.bank, n) for n in range(3)]
    for stx in stxs:
        assert client.submit(stx).get("code") == "accepted"
    assert wait_until(lambda: all(committed(client, s.tx_id_hex) for s in stxs), timeout=60)
    docs = [committed(client, s.tx_id_hex) for s in stxs]
    assert all(d is not None and d["result"] == "ok" for d in docs), docs
    head = agree(net, net.names[1:])
    forged = 0
    for h in range(1, head + 1):
        block = client.block(h)
        forged += sum(1 for t in block["txs"] if t["result"] == "bad_signature")
    client.close()
    assert forged >= 1, "the primary forged nothing"
    emit("forgery", forged_copies=forged, real_committed=len(docs), view=net.status("bank")["view"])


def test_silent_primary_is_replaced(make_net: MakeNet) -> None:
    net = byzantine(make_net, "silent", "silent", who=0)
    correct = net.names[1:]
    started = time.monotonic()
    acks = net.run_round(via=correct, cases=1, reports_per_case=2)
    emit("silent_primary", txs=len(acks), seconds=round(time.monotonic() - started, 2))
    agree(net, correct)
    assert all(int(net.status(n)["view"]) >= 1 for n in correct)


def _rss_mb(net: Net, name: str) -> float:
    pid = net.cons.procs[name].pid
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.parametrize("kind", ["garbage", "replay", "conflict", "flood", "silent"])
def test_a_misbehaving_backup_changes_nothing(make_net: MakeNet, kind: str) -> None:
    """Garbage and oversize frames, replayed old messages, conflicting votes, a flood of
    proposals for far heights, or silence from one backup: the other three keep committing
    in view 0, agree block by block, and their memory stays flat."""
    net = byzantine(make_net, f"bad-{kind}", kind, who=3)
    correct = net.names[:3]
    before = {n: _rss_mb(net, n) for n in correct}
    started = time.monotonic()
    acks = []
    while time.monotonic() - started < 20:
        acks += net.run_round(via=correct, cases=1, reports_per_case=3)
    growth = {n: round(_rss_mb(net, n) - before[n], 1) for n in correct}
    head = agree(net, correct)
    views = {n: int(net.status(n)["view"]) for n in correct}
    emit("misbehaving_backup", kind=kind, txs=len(acks), head=head, rss_growth_mb=growth, views=views)
    assert all(v == 0 for v in views.values()), f"a backup's {kind} cost the primary its view: {views}"
    assert max(growth.values()) < 64, f"memory grew under {kind}: {growth}"
    assert net.cons.procs[net.names[3]].poll() is None  # it kept running, too (it was meant to misbehave)


def test_twins_one_key_two_processes(make_net: MakeNet) -> None:
    """Diem's Twins: a second process runs one backup's validator key, from a copy of its
    store (so both hold the same votes and keep voting, possibly differently), with its
    own ports. The consortium still agrees on one chain and keeps committing."""
    import shutil
    import signal

    net = make_net(Manifest("twins", view_change_timeout_ms=1000))
    net.start()
    twin = net.names[3]
    correct = net.names[:3]
    net.run_round(via=correct, cases=1, reports_per_case=2)
    net.kill(twin, signal.SIGTERM)
    twin_dir = add_twin(net, twin)
    shutil.copytree(net.testnet.dir / twin / "data", twin_dir / "data")
    copied = int(_store_height(net, twin))
    net.start_node(twin)
    net.start_node("twin")
    acks = []
    started = time.monotonic()
    while time.monotonic() - started < 20:
        acks += net.run_round(via=correct, cases=1, reports_per_case=3)
    head = agree(net, correct)
    twin_height = int(net.status("twin")["height"])
    emit("twins", txs=len(acks), head=head, copied_height=copied, twin_height=twin_height)
    assert twin_height >= copied > 0
    assert net.cons.procs["twin"].poll() is None and net.cons.procs[twin].poll() is None


def _store_height(net: Net, name: str) -> int:
    """The height a stopped node's store holds (read through the same code the node uses)."""
    from node.server.ledger import Ledger
    from primitives.genesis import Genesis

    ledger = Ledger.open(net.testnet.dir / name / "data", Genesis.load(net.testnet.dir / "genesis.json"))
    try:
        return ledger.height
    finally:
        ledger.close()


def add_twin(net: Net, of: str) -> Path:
    """A second node directory with `of`'s validator key, an empty store and its own ports,
    added to the testnet as "twin" (it catches up from the others, then votes as `of`)."""
    import json
    import shutil

    from node.tools.testnet import free_port_block

    src, directory = net.testnet.dir / of, net.testnet.dir / "twin"
    directory.mkdir()
    for name in ("config.json", "node_key.json"):
        shutil.copy(src / name, directory / name)
    shutil.copy(net.testnet.dir / "genesis.json", directory / "genesis.json")
    config = json.loads((directory / "config.json").read_text())
    base = free_port_block(2)
    config.update(name="twin", genesis="genesis.json", data_dir="data")
    config["rpc"]["port"], config["p2p"]["port"] = base, base + 1
    (directory / "config.json").write_text(json.dumps(config, indent=2))
    entry = {**net.node(of), "name": "twin", "rpc_url": f"http://127.0.0.1:{base}"}
    entry.update(config="twin/config.json", data_dir="twin/data")
    net.add_node(entry)
    return directory
