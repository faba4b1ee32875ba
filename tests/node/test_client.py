"""The client library against a real single-validator node (in-process, LevelDB in
tmp, aiohttp on 127.0.0.1): the sync and async clients answer every method alike and
as the node committed; `/v1/events?from_height` replays exactly what a live subscriber
saw and joins the live stream with no gap and no duplicate while blocks keep coming;
the device reporter's report commits and only its recipients can open it.

One node serves the module: the demo financing round runs once at set-up, with a
plain live WebSocket subscriber (no resume) recording the reference events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from contracts.state import P_CASE
from node.client import AsyncClient, Client, DeviceReporter, EventStream, Signer, builders, open_report
from node.client.rpc import RpcClient
from node.server import events as server_events
from node.tools.demo import run_step
from node.tools.demo_steps import demo_steps
from node.tools.participants import Participants, participants_of
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair
from primitives.state_proof import verify_proof
from tests.node.conftest import WAIT, NodeThread, free_port, http, make_testnet, node_config, token_guarded, wait_until
from tests.node.test_rpc import EventListener

pytestmark = pytest.mark.timeout(300)


@dataclass
class Chain:
    node: NodeThread
    p: Participants
    live: EventListener
    live_alarms: EventListener
    head: int

    @property
    def url(self) -> str:
        return self.node.url


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    net = make_testnet(tmp_path_factory.mktemp("client") / "net")
    node = NodeThread(node_config(net))
    live, alarms = EventListener(node.url), EventListener(node.url, "?kinds=alarm")
    try:
        running = node.start()
        live.start()
        alarms.start()
        wait_until(lambda: running.core.events.subscribers == 2, timeout=5, what="both subscribers registered")
        p = participants_of(net)
        rpc = RpcClient(node.url)
        for step in demo_steps(p, net.chain_id, int(time.time() * 1000)):
            run_step(rpc, step)
        wait_until(lambda: rpc.status()["state_certified"], timeout=10, what="the certifying empty block")
        head = int(rpc.status()["height"])
        wait_until(lambda: any(e.get("height") == head for e in live.events), timeout=10, what="the head's events")
        live.stop()
        alarms.stop()
        yield Chain(node, p, live, alarms, head)
    finally:
        live._stop.set()
        alarms._stop.set()
        node.stop()


def take(stream: EventStream, count: int) -> list[dict[str, Any]]:
    return [stream.next(timeout=WAIT) for _ in range(count)]


def up_to(events: list[dict[str, Any]], height: int) -> list[dict[str, Any]]:
    return [e for e in events if e["height"] <= height]


def one_more_block(chain: Chain) -> int:
    """Commit a transaction (a fresh rating) and return its height."""
    with Client(chain.url) as client:
        signer = Signer.for_node(client, chain.p.bank)
        body = builders.rating_issue(
            subject=chain.p.borrower.id, grade="A", valid_until_ms=2**50, report_hash=bytes(32)
        )
        answer = client.submit(signer.sign(body), wait_ms=30_000)
        assert answer.committed and answer.result == "ok"
        assert answer.height is not None
        return answer.height


# ---- events: replay and resume --------------------------------------------------------------


def test_every_event_carries_its_height(chain: Chain) -> None:
    assert chain.live.events and all(isinstance(e["height"], int) for e in chain.live.events)
    assert {e["kind"] for e in chain.live.events} >= {"block", "tx", "alarm_raised", "case"}


def test_replay_from_genesis_gives_exactly_what_the_live_subscriber_saw(chain: Chain) -> None:
    live = up_to(chain.live.events, chain.head)
    with Client(chain.url).subscribe(from_height=1) as stream:
        replayed = take(stream, len(live))
        assert replayed == live
        height = one_more_block(chain)  # and then live, nothing repeated
        assert stream.next(timeout=WAIT)["height"] == height


def test_filtered_replay_equals_the_filtered_live_stream(chain: Chain) -> None:
    live = up_to(chain.live_alarms.events, chain.head)
    assert live and all(e["kind"].startswith("alarm") for e in live)
    with Client(chain.url).subscribe(from_height=1, kinds=("alarm",)) as stream:
        replayed = [stream.next(timeout=WAIT) for _ in live]
    assert replayed == live


def test_replay_from_a_middle_height_starts_there(chain: Chain) -> None:
    middle = chain.head // 2
    live = [e for e in up_to(chain.live.events, chain.head) if e["height"] >= middle]
    with Client(chain.url).subscribe(from_height=middle) as stream:
        assert take(stream, len(live)) == live


def test_replay_joins_the_live_stream_without_gap_or_duplicate(chain: Chain) -> None:
    """Blocks commit while a subscriber replays from genesis: the block events it gets run
    1, 2, 3, … with none missing or repeated, and match a live subscriber's."""
    stop = threading.Event()
    committed: list[int] = []

    def load() -> None:
        while not stop.is_set() and len(committed) < 200:
            committed.append(one_more_block(chain))

    live = EventListener(chain.url, "?kinds=block,tx").start()
    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        wait_until(lambda: len(committed) >= 3, timeout=WAIT, what="load running")
        with Client(chain.url).subscribe(from_height=1, kinds=("block", "tx")) as stream:
            wait_until(lambda: len(committed) >= 10, timeout=WAIT, what="more blocks while subscribed")
            stop.set()
            loader.join(WAIT)
            last = committed[-1]
            got = take_through(stream, last)
        wait_until(lambda: any(e["height"] == last for e in live.events), timeout=WAIT, what="live reached the end")
    finally:
        stop.set()
        live.stop()
    heights = [e["height"] for e in got if e["kind"] == "block"]
    assert heights == list(range(1, last + 1))
    first_live = live.events[0]["height"]
    assert [e for e in got if e["height"] >= first_live] == up_to(live.events, last)


def take_through(stream: EventStream, height: int) -> list[dict[str, Any]]:
    """Events through the last transaction event of `height` (one transaction per load block)."""
    out: list[dict[str, Any]] = []
    while not (out and out[-1]["height"] == height and out[-1]["kind"] == "tx"):
        out.append(stream.next(timeout=WAIT))
    return out


def test_bad_from_height_is_a_clear_400(chain: Chain) -> None:
    head = int(RpcClient(chain.url).status()["height"])
    for bad in ("abc", "-1", "0", "1.5", str(head + 2), "9" * 30):
        reply = http(chain.url, "GET", f"/v1/events?from_height={bad}")
        assert (reply.status, reply.code) == (400, "malformed"), bad


def test_resuming_too_far_back_is_history_unavailable(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_events, "MAX_REPLAY_HEIGHTS", 5)
    reply = http(chain.url, "GET", "/v1/events?from_height=1")
    assert (reply.status, reply.code) == (410, "history_unavailable")
    with Client(chain.url).subscribe(from_height=1) as stream, pytest.raises(GodownError) as err:
        stream.next(timeout=WAIT)
    assert err.value.code is Code.HISTORY_UNAVAILABLE


# ---- the typed clients ----------------------------------------------------------------------


def test_sync_client_answers_every_method(chain: Chain) -> None:
    p = chain.p
    with Client(chain.url) as c:
        status = c.status()
        assert status.chain_id == "godown-test" and status.height >= chain.head
        latest = c.block()
        assert latest.height == c.status().height or latest.height == c.status().height - 1
        block = c.block(2)
        assert block.height == 2 and block.block.hash().hex() == block.hash and block.commit is not None
        assert block.commit.block_hash == block.block.hash()
        signed = block.block.txs[0]
        info = c.tx(signed.tx_id_hex)
        assert (info.status, info.height, info.index, info.signed) == ("committed", 2, 0, signed)
        assert info.result == block.block.results[0]
        entry = c.state(P_CASE + b"C1")
        assert entry.exists and entry.value["id"] == "C1"
        assert verify_proof(entry.state_root, entry.key, entry.value_raw, entry.proof)
        assert not c.state("no-such-key").exists
        assert c.case("C1")["lot"] == "L1"
        assert c.lot("L1")["id"] == "L1"
        assert c.device(p.devices[0].id)["id"] == p.devices[0].id
        alarm = next(e["alarm"] for e in chain.live.events if e["kind"] == "alarm_raised")
        assert c.alarm(alarm)["id"] == alarm
        assert {m["id"] for m in c.members()} >= {p.bank.id, p.warehouse.id}
        assert c.validators()["validators"]
        assert c.proposals() == []
        account = c.account(p.bank.id)
        assert account.next_nonce == c.next_nonce(p.bank.id) >= account.committed_nonce > 0
        for fetch in (lambda: c.proposal("nope"), lambda: c.case("nope"), lambda: c.tx("00" * 32)):
            with pytest.raises(GodownError) as err:
                fetch()
            assert err.value.code is Code.NOT_FOUND


def test_async_client_answers_as_the_sync_one(chain: Chain) -> None:
    p = chain.p
    sync = Client(chain.url)
    tx_id = sync.block(2).block.txs[0].tx_id_hex
    alarm = next(e["alarm"] for e in chain.live.events if e["kind"] == "alarm_raised")

    async def main() -> None:
        async with AsyncClient(chain.url) as c:
            assert (await c.status()).chain_id == sync.status().chain_id
            assert await c.block(2) == sync.block(2)
            assert await c.tx(tx_id) == sync.tx(tx_id)
            assert await c.state(P_CASE + b"C1") == sync.state(P_CASE + b"C1")
            assert await c.case("C1") == sync.case("C1")
            assert await c.lot("L1") == sync.lot("L1")
            assert await c.device(p.devices[0].id) == sync.device(p.devices[0].id)
            assert await c.alarm(alarm) == sync.alarm(alarm)
            assert await c.members() == sync.members()
            assert await c.validators() == sync.validators()
            assert await c.proposals() == sync.proposals()
            assert await c.account(p.bank.id) == sync.account(p.bank.id)
            with pytest.raises(GodownError) as err:
                await c.proposal("nope")
            assert err.value.code is Code.NOT_FOUND
            # submit one and several, waiting for the commits
            signer = Signer.for_node(sync, p.bank)
            body = builders.rating_issue(subject=p.borrower.id, grade="AA", valid_until_ms=2**50, report_hash=b"h" * 32)
            one = await c.submit(signer.sign(body), wait_ms=30_000)
            assert one.committed and one.result == "ok"
            many = await c.submit_many([signer.sign(body), signer.sign(body)], wait_ms=30_000)
            assert [a.result for a in many] == ["ok", "ok"]
            with pytest.raises(GodownError) as err:  # a replay: refused with the node's code
                await c.submit(signer.sign(body, nonce=0))
            assert err.value.code in (Code.BAD_NONCE, Code.DUPLICATE)
            # and events: the async iterator replays as the sync one does
            live = up_to(chain.live.events, chain.head)
            stream = c.subscribe(from_height=1)
            got = [await anext(stream) for _ in live]
            await stream.aclose()
            assert got == live

    try:
        asyncio.run(main())
    finally:
        sync.close()


def test_sync_submit_many_reports_each_code(chain: Chain) -> None:
    with Client(chain.url) as c:
        signer = Signer.for_node(c, chain.p.bank)
        body = builders.rating_issue(
            subject=chain.p.warehouse.id, grade="A", valid_until_ms=2**50, report_hash=bytes(32)
        )
        good = signer.sign(body)
        answers = c.submit_many([good, good], wait_ms=30_000)
        assert answers[0].committed and answers[0].tx_id == good.tx_id_hex
        assert answers[1].code in ("duplicate", "bad_nonce")
        with pytest.raises(GodownError) as err:
            c.submit(Signer(chain.p.auditor, "godown-test").sign(body))  # an auditor may not rate
        assert err.value.code in (Code.FORBIDDEN_ROLE, Code.BAD_NONCE)


def test_the_token_goes_with_every_call_and_subscription(chain: Chain) -> None:
    """The same node behind a token: the clients and the stream work with it, and
    without it raise `unauthorized` (not retried); an unreachable node is `unavailable`."""
    with token_guarded(chain.node, chain.node.core) as url:
        with Client(url, token="s3cret-token") as c:
            assert c.status().height >= chain.head
            with c.subscribe(from_height=chain.head) as stream:
                assert stream.next(timeout=WAIT)["height"] == chain.head

        async def with_token() -> int:
            async with AsyncClient(url, "s3cret-token") as ac:
                return (await ac.status()).height

        assert asyncio.run(with_token()) >= chain.head
        with Client(url, token="wrong") as c:
            with pytest.raises(GodownError) as err:
                c.status()
            assert err.value.code is Code.UNAUTHORIZED
            with c.subscribe(from_height=1) as stream, pytest.raises(GodownError) as err:
                stream.next(timeout=WAIT)
            assert err.value.code is Code.UNAUTHORIZED
    with Client(f"http://127.0.0.1:{free_port()}") as c, pytest.raises(GodownError) as err:
        c.status()
    assert err.value.code is Code.UNAVAILABLE


# ---- the device reporter ----------------------------------------------------------------------


def test_device_reporter_report_commits_and_only_recipients_open_it(chain: Chain) -> None:
    p = chain.p
    device = KeyPair.generate("gate-z", "device")
    with Client(chain.url) as c:
        warehouse, bank = Signer.for_node(c, p.warehouse), Signer.for_node(c, p.bank)
        reg = builders.device_register(device=device.id, sign_pub=device.sign_pub, zone="zone-z", kind="scale")
        assert c.submit(warehouse.sign(reg), wait_ms=30_000).result == "ok"
        assert c.submit(bank.sign(builders.device_accept(device=device.id)), wait_ms=30_000).result == "ok"
        recipients = {p.warehouse.id: p.warehouse.enc_pub, p.bank.id: p.bank.enc_pub}
        reporter = DeviceReporter(c, device, "LZ", recipients)
        assert (reporter.seq, reporter.nonce) == (0, 0)
        first = reporter.report("inbound", {"kg": 120}, quantity=120)
        assert first.answer.committed and first.answer.result == "ok"
        receipt = builders.lot_receive(
            lot="LZ", zone="zone-z", owner=p.borrower.id, commodity="rice", unit="kg", quantity=120
        )
        assert c.submit(warehouse.sign(receipt), wait_ms=30_000).result == "ok"
        second = reporter.report("reading", {"kg": 119})
        assert second.answer.result == "ok" and (reporter.seq, reporter.nonce) == (2, 2)
        assert c.device(device.id)["seq"] == 1
        stored = c.tx(second.signed.tx_id_hex).signed
        assert stored == second.signed
        opened = open_report(stored, p.bank.id, p.bank.enc_secret)
        assert opened["data"] == {"kg": 119} and opened["lot"] == "LZ" and opened["device"] == device.id
        assert open_report(stored, p.warehouse.id, p.warehouse.enc_secret)["data"] == {"kg": 119}
        with pytest.raises(GodownError) as err:
            open_report(stored, p.insurer.id, p.insurer.enc_secret)
        assert err.value.code is Code.NOT_RECIPIENT
        again = DeviceReporter(c, device, "LZ", recipients)  # a new reporter takes the node's view
        assert (again.seq, again.nonce) == (2, 2)
