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
from tests.storage.tmpfs import fill, free_bytes, remount, tmpfs

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
    stx = Tx(net.testnet.chain_id, "rating.issue", bank.id, 10**9, {}).sign(bank)
    body = json.dumps({"tx": stx.tx_bytes.hex(), "sig": stx.sig.hex()}).encode()
    req = urllib.request.Request(
        net.node(name)["rpc_url"] + "/v1/txs", data=body, headers={"Content-Type": "application/json"}
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
    victim = net.names[-1]
    others = net.names[:-1]
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
            assert '"msg":"store write failed: node stopping"' in text and '"code":"disk_full"' in text
            assert "error [disk_full]:" in text
            stop_line = json.loads(next(ln for ln in text.splitlines() if "store write failed" in ln))

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
