"""Storage faults on a real local consortium (issue #10, docs/storage-faults.md).

1. A node whose data dir is a small tmpfs fills up under load: it refuses submissions
   with `disk_full` (HTTP 507) below its reserve and accepts again once the tmpfs is
   remounted bigger, without a restart; at the wall it stops (exit 75) rather than skip
   a block, refuses to start while still full, and after more space starts, catches up
   and agrees with the others.
2. A killed node's LevelDB files damaged as a crash or a bad disk would: start-up and
   `godown audit replay --data-dir` agree — both recover (a torn last write) or both
   refuse with `store_damaged` and exit 1, never a traceback.
3. kill -9 at random moments under load, in a loop: every store passes the start-up
   check, and the chain ends equal everywhere.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from node.server.ledger import EXIT_DISK_FULL, Ledger
from primitives.genesis import Genesis
from primitives.tx import Tx
from storage.kv import LevelKV
from storage.leveldb_log import newest_log, torn_tail
from storage.space import reserve_for
from tests.e2e.manifests import BackgroundLoad, MakeNet, Manifest, Net, emit, wait_until
from tests.storage.tmpfs import fill, remount, tmpfs

pytestmark = [pytest.mark.e2e]

MIB = 1024 * 1024


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real `godown` command; its result whatever the exit status."""
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=timeout)


def data_dir(net: Net, name: str) -> Path:
    return net.testnet.dir / net.node(name)["data_dir"]


def probe(net: Net, name: str) -> tuple[int, str]:
    """(HTTP status, code) a node answers to one well-formed transaction it can never
    admit (nonce far ahead): `bad_nonce` while it accepts, `disk_full` while it refuses."""
    bank = net.load.participants.bank
    body = {"subject": bank.id, "grade": "A", "valid_until_ms": 2**50, "report_hash": bytes(32)}
    stx = Tx(net.testnet.chain_id, "rating.issue", bank.id, 10**9, body).sign(bank)
    data = json.dumps({"tx": stx.tx_bytes.hex(), "sig": stx.sig.hex()}).encode()
    req = urllib.request.Request(
        net.node(name)["rpc_url"] + "/v1/txs", data=data, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, str(json.loads(resp.read()).get("code"))
    except urllib.error.HTTPError as err:
        return err.code, str(json.loads(err.read())["error"]["code"])


def start_check(net: Net, name: str) -> tuple[int, bool]:
    """What the node's own start-up check says of its (stopped) store: (head, torn tail seen)."""
    genesis = Genesis.load(net.testnet.dir / "genesis.json")
    ledger = Ledger.open(data_dir(net, name), genesis)  # raises store_damaged / disk_full
    try:
        kv = ledger.store._kv
        return ledger.height, isinstance(kv, LevelKV) and kv.torn_tail is not None
    finally:
        ledger.close()


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text[-3000:]


# ---- 1. a full disk ---------------------------------------------------------------------------


@pytest.mark.timeout(360)
def test_full_disk_refuses_resumes_stops_and_recovers(make_net: MakeNet) -> None:
    net = make_net(Manifest("disk-full"))
    first_primary = Genesis.load(net.testnet.dir / "genesis.json").validator_ids[0]
    victim = next(n for n in reversed(net.names) if net.node(n)["node_id"] != first_primary)  # a backup
    others = [n for n in net.names if n != victim]
    mount = data_dir(net, victim)
    with tmpfs(mount, "8m"):
        try:
            net.start()
            assert victim != net.primary()
            pid = net.cons.procs[victim].pid
            assert probe(net, victim) == (409, "bad_nonce")

            # below the reserve: submissions refused, blocks still stored
            with BackgroundLoad(net, via=others, cases=2, reports_per_case=6) as load:
                load.wait_acks(10, timeout=60)
                fill(mount, reserve_for(8 * MIB) + 384 * 1024)
                t0 = time.monotonic()
                assert wait_until(lambda: probe(net, victim) == (507, "disk_full"), timeout=90)
                refused_after = time.monotonic() - t0
                height_low = int(net.status(victim)["height"])
                assert wait_until(lambda: int(net.status(victim)["height"]) > height_low + 2, timeout=60)
            assert load.error is None, load.error
            status = net.status(victim)
            assert status["storage"]["accepting"] is False, status["storage"]
            assert "disk nearly full: refusing new transactions" in net.log(victim)

            # space returns: the same process accepts again
            remount(mount, "16m")
            assert wait_until(lambda: probe(net, victim) == (409, "bad_nonce"), timeout=10)
            acks = net.run_round(via=[victim], cases=1, reports_per_case=2)
            assert net.cons.procs[victim].pid == pid and net.cons.procs[victim].poll() is None
            assert "disk space back: accepting transactions again" in net.log(victim)

            # the wall: the node stops instead of skipping a block
            fill(mount, 256 * 1024)
            proc = net.cons.procs[victim]
            with BackgroundLoad(net, via=others, cases=2, reports_per_case=6) as load:
                t1 = time.monotonic()
                assert wait_until(lambda: proc.poll() is not None, timeout=120), "the node never hit the wall"
                wall_s = time.monotonic() - t1
                wall_acks = len(load.acks)
                load.wait_acks(wall_acks + 20, timeout=60)  # the other three go on
            assert load.error is None, load.error
            assert proc.returncode == EXIT_DISK_FULL
            text = net.log(victim)
            no_traceback(text)
            assert '"msg":"storage fault: node stopping"' in text and '"code":"disk_full"' in text
            assert "error [disk_full]:" in text
            stop_line = json.loads(next(ln for ln in text.splitlines() if "storage fault: node stopping" in ln))

            # still full: start refused with a clear error
            net.cons.start(victim)
            refused = net.cons.procs[victim]
            assert refused.wait(timeout=60) == 1
            tail = net.cons.log_tail(victim, 5)
            assert "error [disk_full]" in tail, tail
            no_traceback(net.log(victim))

            # space back: the store is intact, the node catches up and takes part
            remount(mount, "64m")
            head, _ = start_check(net, victim)
            started = time.monotonic()
            net.start_node(victim)
            target = max(net.heights(others).values())
            net.wait_heights(target, [victim], timeout=60)
            caught_up_s = time.monotonic() - started
            more = net.run_round(via=[victim], cases=1, reports_per_case=2)
            top = max(a.height for a in more)
            net.wait_heights(top, net.names, timeout=30)
            net.assert_agreement(net.names, top)
            assert probe(net, victim) == (409, "bad_nonce")
            statuses = {n: net.status(n) for n in net.names}
            heads = {n: (int(st["height"]), st["state_root"]) for n, st in statuses.items()}
            assert len(set(heads.values())) == 1, heads
            net.stop_all()
            audit = cli("audit", "replay", "--data-dir", str(mount), "--json")
            no_traceback(audit.stderr)
            report = json.loads(audit.stdout)
            assert audit.returncode == 0 and report["ok"], report
            assert (report["blocks"], report["state_root"]) == heads[victim]
            emit(
                "disk_full",
                tmpfs_mib=8,
                reserve_bytes=reserve_for(8 * MIB),
                seconds_to_refusal=round(refused_after, 2),
                acks_while_resumed=len(acks),
                seconds_to_wall=round(wall_s, 2),
                failed_write=stop_line["doing"],
                head_on_disk_after_wall=head,
                caught_up_to=target,
                seconds_restart_to_caught_up=round(caught_up_s, 2),
            )
        finally:
            net.stop_all()


# ---- 2. damaged files: start-up and audit agree --------------------------------------------------


def _log_of(db: Path) -> Path:
    log = newest_log(db)
    assert log is not None and log.stat().st_size > 0, f"no log in {db}"
    return log


def _largest_table(db: Path) -> Path:
    tables = sorted(db.glob("*.ldb"), key=lambda f: f.stat().st_size)
    assert tables, f"no table file in {db}"
    return tables[-1]


def _cut_log_tail(db: Path) -> None:
    log = _log_of(db)
    log.write_bytes(log.read_bytes()[:-5])
    assert torn_tail(db) is not None


def _cut_log_in_half(db: Path) -> None:
    log = _log_of(db)
    data = log.read_bytes()
    log.write_bytes(data[: len(data) // 2 + 3])


def _garble_log(db: Path) -> None:
    log = _log_of(db)
    data = bytearray(log.read_bytes())
    mid = len(data) // 3
    data[mid : mid + 16] = b"\xff" * 16
    log.write_bytes(bytes(data))


def _cut_table(db: Path) -> None:
    table = _largest_table(db)
    table.write_bytes(table.read_bytes()[: table.stat().st_size // 2])


def _garble_table(db: Path) -> None:
    table = _largest_table(db)
    data = bytearray(table.read_bytes())
    for pos in range(64, len(data) - 64, max(1, len(data) // 40)):
        data[pos] ^= 0xFF
    table.write_bytes(bytes(data))


def _wal_keys(kv: LevelKV) -> list[bytes]:
    return [k for k, _ in kv.iterate(b"W:")]


def _hole_in_wal(db: Path) -> None:
    kv = LevelKV(db)
    try:
        keys = _wal_keys(kv)
        assert keys, "no write-ahead records"
        while len(keys) < 3:  # compaction may have left few: lengthen the log with copies of its last record
            last = kv.get(keys[-1])
            assert last is not None
            keys.append(b"W:" + struct.pack(">Q", struct.unpack(">Q", keys[-1][2:])[0] + 1))
            kv.put(keys[-1], last)
        kv.delete(keys[len(keys) // 2])
    finally:
        kv.close()


def _cut_wal_record(db: Path) -> None:
    """A record cut short as written (what a bug or a bad disk below LevelDB's checksums leaves)."""
    kv = LevelKV(db)
    try:
        keys = _wal_keys(kv)
        assert keys, "no write-ahead records"
        last = kv.get(keys[-1])
        assert last is not None
        seq = struct.unpack(">Q", keys[-1][2:])[0]
        kv.put(b"W:" + struct.pack(">Q", seq + 1), last[:-5])
    finally:
        kv.close()


# name: (damage, what start-up and audit must both do: "recover" or "refuse")
DAMAGES = {
    "none": (lambda db: None, "recover"),  # the control: the killed node's store as it was left
    "log-torn-tail": (_cut_log_tail, "recover"),
    "log-cut-in-half": (_cut_log_in_half, "recover"),
    "log-garbled": (_garble_log, "refuse"),
    "table-cut": (_cut_table, "refuse"),
    "table-garbled": (_garble_table, "refuse"),
    "wal-hole": (_hole_in_wal, "refuse"),
    "wal-record-cut": (_cut_wal_record, "refuse-start"),  # the audit replays the chain, not this node's votes
}


def _start_alone(config: Path, rpc_url: str) -> tuple[int | None, dict[str, Any] | None, str]:
    """Start a node on its own (its peers are down): (exit status if it stopped, its
    status if it answered, its output)."""
    from node.client.rpc import RpcClient

    out = config.parent / "start.log"
    with open(out, "wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "node", "start", "--config", str(config)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    client = RpcClient(rpc_url, timeout=5)
    status: dict[str, Any] | None = None
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and status is None and time.monotonic() < deadline:
            try:
                status = client.status()
            except Exception:
                time.sleep(0.2)
    finally:
        client.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = None
        else:
            code = proc.returncode
    return code, status, out.read_text(errors="replace")


@pytest.mark.timeout(300)
def test_damaged_store_start_and_audit_agree(make_net: MakeNet) -> None:
    net = make_net(Manifest("damaged-store"))
    net.start()
    victim = net.names[-1]
    with BackgroundLoad(net, via=net.names[:-1], cases=2, reports_per_case=4) as load:
        load.wait_acks(15, timeout=60)
        net.kill(victim)  # kill -9: the log holds what it was writing
        net.start_node(victim)  # recovery turns that log into a table file
        restarted_at = int(net.status(victim)["height"])
        load.wait_acks(len(load.acks) + 30, timeout=60)
        # the restarted node must have written blocks of its own into its new log (on a
        # loaded machine it may still be catching up when the others have 30 more acks)
        net.client(victim).wait_height(restarted_at + 5, timeout=60)
        net.kill(victim)
    assert load.error is None, load.error
    net.stop_all()
    node_dir = net.testnet.dir / victim
    rpc_url = net.node(victim)["rpc_url"]
    figures: dict[str, Any] = {}
    for name, (damage, expected) in DAMAGES.items():
        copy = net.testnet.dir / f"copy-{name}"
        shutil.copytree(node_dir, copy, ignore=shutil.ignore_patterns("node.log", "start.log"))
        damage(copy / "data" / "chain")
        code, status, output = _start_alone(copy / "config.json", rpc_url)
        no_traceback(output)
        audit = cli("audit", "replay", "--data-dir", str(copy / "data"), "--json")
        no_traceback(audit.stderr)
        if expected == "recover":
            assert code is None and status is not None, f"{name}: start exited {code}:\n{output[-2000:]}"
            report = json.loads(audit.stdout)
            assert audit.returncode == 0 and report["ok"], f"{name}: {report}"
            assert (report["blocks"], report["state_root"]) == (int(status["height"]), status["state_root"]), name
            figures[name] = {"outcome": "recovered", "height": int(status["height"])}
            if name == "log-torn-tail":
                assert "store recovered from a torn last write" in output, output[-2000:]
        else:
            assert code == 1 and status is None, f"{name}: start gave {code}, {status}:\n{output[-2000:]}"
            assert "error [store_damaged]" in output, f"{name}: {output[-2000:]}"
            if expected == "refuse":
                assert audit.returncode == 1 and "error [store_damaged]" in audit.stderr, f"{name}: {audit}"
            else:
                assert audit.returncode == 0 and json.loads(audit.stdout)["ok"], f"{name}: {audit}"
            figures[name] = {"outcome": "refused", "message": output.strip().splitlines()[-1][:160]}
    emit("damaged_store", **figures)


# ---- 3. kill -9 in the middle of commits, in a loop ----------------------------------------------


def _kill_loop(make_net: MakeNet, iterations: int, name: str) -> None:
    """Under load through one node, SIGKILL one of the others at a random moment, check its
    store as its own start-up does, restart it and let it catch up; then every node agrees."""
    seed = int(os.environ.get("GODOWN_KILL_SEED", str(random.randrange(1 << 30))))
    print(f"kill loop seed {seed} (GODOWN_KILL_SEED replays it)")
    rng = random.Random(seed)
    net = make_net(Manifest(name))
    net.start()
    entry, victims = net.names[0], net.names[1:]
    rounds: list[dict[str, Any]] = []
    with BackgroundLoad(net, via=[entry], cases=2, reports_per_case=6) as load:
        load.wait_acks(10, timeout=60)
        for i in range(iterations):
            victim = rng.choice(victims)
            time.sleep(rng.uniform(0.05, 1.5))
            net.kill(victim, signal.SIGKILL)
            others = max(net.heights([n for n in net.names if n != victim]).values())
            head, torn = start_check(net, victim)  # hash chain, state root, write-ahead log
            t0 = time.monotonic()
            net.start_node(victim)
            ready = time.monotonic() - t0
            net.wait_heights(others, [victim], timeout=60)
            rounds.append(
                {
                    "victim": victim,
                    "head_on_disk": head,
                    "others_at": others,
                    "torn_tail": torn,
                    "ready_s": round(ready, 2),
                    "caught_up_s": round(time.monotonic() - t0, 2),
                }
            )
            assert load.error is None, (i, load.error)
    assert load.error is None, load.error
    top = max(net.heights().values())
    net.wait_heights(top, net.names, timeout=60)
    net.assert_agreement(net.names, top)
    statuses = {n: net.status(n) for n in net.names}
    assert len({(int(s["height"]), s["state_root"]) for s in statuses.values()}) == 1, statuses
    net.stop_all()
    killed = sorted({r["victim"] for r in rounds})
    for victim in killed:  # the audit agrees with the start-up check on every killed node's store
        audit = cli("audit", "replay", "--data-dir", str(data_dir(net, victim)), "--json")
        no_traceback(audit.stderr)
        report = json.loads(audit.stdout)
        assert audit.returncode == 0 and report["ok"], report
        assert report["state_root"] == statuses[victim]["state_root"]
    emit(
        "kill9_loop",
        seed=seed,
        iterations=iterations,
        acks=len(load.acks),
        final_height=top,
        torn_tails=sum(1 for r in rounds if r["torn_tail"]),
        max_caught_up_s=max(r["caught_up_s"] for r in rounds),
        mean_caught_up_s=round(sum(r["caught_up_s"] for r in rounds) / len(rounds), 2),
        behind_at_kill_max=max(r["others_at"] - r["head_on_disk"] for r in rounds),
    )


@pytest.mark.timeout(240)
def test_kill9_during_commits_short(make_net: MakeNet) -> None:
    _kill_loop(make_net, 4, "kill9-short")


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_kill9_during_commits_loop(make_net: MakeNet) -> None:
    _kill_loop(make_net, 25, "kill9-loop")
