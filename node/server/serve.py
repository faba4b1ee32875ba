"""`godown node start`: one node in the foreground until SIGINT/SIGTERM.

Opens the store (refusing a damaged one), starts the RPC and the consensus
engine — the single-validator engine when genesis names one validator, the
PBFT driver over libp2p otherwise — and stops them in order on a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass

from aiohttp import web

import contracts
from node.server.config import NodeConfig
from node.server.core import NodeCore
from node.server.ledger import Ledger
from node.server.pbft import ReplicaDriver
from node.server.pbft.misbehaviour import Misbehaviour
from node.server.pbft.statesync import TrustAnchor, sync_state
from node.server.rpc import make_app
from node.server.rpc_history import ReportKey
from node.server.solo import SoloEngine
from primitives.errors import Code, GodownError, NodeFault
from primitives.genesis import Genesis, Validator
from primitives.keys import KeyPair
from storage.chain import ChainStore

log = logging.getLogger("godown.server")


@dataclass
class RunningNode:
    core: NodeCore
    runner: web.AppRunner
    engine_task: asyncio.Task[None]
    engine: SoloEngine | ReplicaDriver

    async def stop(self) -> None:
        self.engine_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.engine_task
        if isinstance(self.engine, ReplicaDriver):
            await self.engine.stop()
        await self.runner.cleanup()
        self.core.close()


SWITCH_INTERVAL_S = 0.001
"""The libp2p thread and the event loop hand frames to each other; with CPython's
default 5 ms GIL switch interval every hand-off can wait that long while the other
thread computes, which showed up as tens of ms per consensus round."""


async def _state_sync_if_blank(config: NodeConfig, genesis: Genesis, key: KeyPair) -> None:
    """A node with a trust anchor and no data joins by state sync (DESIGN §4)."""
    assert config.state_sync_trust is not None
    anchor = TrustAnchor.parse(config.state_sync_trust)
    store = ChainStore.open_path(config.data_dir / "chain")
    try:
        if not store.is_blank:
            return
        peers = {v.node_id: (v.node_pub, v.p2p_addr) for v in genesis.validators if v.node_id != key.id}
        log.info("state sync", extra={"trust_height": anchor.height, "peers": len(peers)})
        await sync_state(store, genesis, key, peers, (config.p2p_host, config.p2p_port), anchor)
    finally:
        store.close()


def _solo(ledger: Ledger) -> bool:
    """One validator and no change scheduled: the solo engine (no consensus traffic)."""
    current, pending = contracts.validator_schedule(ledger.state)
    return len(current) == 1 and pending is None


def _own_validator(config: NodeConfig, ledger: Ledger, key: KeyPair) -> Validator | None:
    """This node's entry in the committed validator set (in force, or approved and
    pending; genesis writes the first). A node that joined by state sync may not be in
    the set of the height it installed: it follows the chain as an observer until its
    set governs. Any other node key is refused (no validator would let it connect)."""
    current, pending = contracts.validator_schedule(ledger.state)
    known = [*current, *(pending[1] if pending else ())]
    validator = next((v for v in known if v.node_id == key.id), None)
    if validator is None and config.state_sync_trust is None:
        raise GodownError(
            Code.BAD_CONFIG,
            f"node key {config.key_file} (node id {key.id}) is not a validator of this chain; "
            "a validator added by governance joins with state sync (godown node init --state-sync)",
        )
    if validator is not None and config.member_id and validator.member != config.member_id:
        raise GodownError(
            Code.BAD_CONFIG, f"the chain says node {key.id} is run by {validator.member}, not {config.member_id}"
        )
    return validator


async def start_node(config: NodeConfig, misbehaviour: Misbehaviour | None = None) -> RunningNode:
    """Open everything and start serving; returns once the RPC listens. `misbehaviour` is
    for fault tests only (see `node.server.pbft.misbehaviour`)."""
    sys.setswitchinterval(float(os.environ.get("GODOWN_SWITCH_S", SWITCH_INTERVAL_S)))
    genesis = Genesis.load(config.genesis)
    key = KeyPair.load(config.key_file)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if config.state_sync_trust is not None:
        await _state_sync_if_blank(config, genesis, key)
    ledger = Ledger.open(config.data_dir, genesis, config.keep_blocks)
    try:
        validator = _own_validator(config, ledger, key)
        member_id = validator.member if validator else config.member_id
        report_key = None if config.report_key_file is None else ReportKey.load(config.report_key_file, member_id)
    except GodownError:
        ledger.close()
        raise
    core = NodeCore(
        config.name,
        key,
        genesis,
        ledger,
        config.mempool_max_txs,
        member_id=member_id,
    )
    engine: SoloEngine | ReplicaDriver = (
        SoloEngine(core) if _solo(ledger) else ReplicaDriver(core, config, misbehaviour)
    )
    app = make_app(core, config.rpc_token, report_key)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, config.rpc_host, config.rpc_port).start()
        except OSError as exc:
            raise NodeFault(Code.UNAVAILABLE, f"cannot listen for RPC on {config.rpc_url}: {exc.strerror}") from None
        if isinstance(engine, ReplicaDriver):
            await engine.start()
    except BaseException:
        await runner.cleanup()
        core.close()
        raise
    task = asyncio.create_task(engine.run())
    log.info("node started", extra={"node_name": config.name, "rpc": config.rpc_url, "height": ledger.height})
    return RunningNode(core, runner, task, engine)


async def serve_forever(config: NodeConfig, misbehaviour: Misbehaviour | None = None) -> None:
    node = await start_node(config, misbehaviour)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    done = asyncio.ensure_future(stopping.wait())
    await asyncio.wait({done, node.engine_task}, return_when=asyncio.FIRST_COMPLETED)
    failure = None
    if node.engine_task.done() and not node.engine_task.cancelled():
        failure = node.engine_task.exception()
        if failure is not None:
            log.error("consensus engine stopped", exc_info=failure)
    log.info("node stopping", extra={"node_name": config.name})
    await node.stop()
    if failure is not None:  # exit non-zero, so that a supervisor restarts the node
        if isinstance(failure, GodownError):
            raise failure
        raise NodeFault(Code.INTERNAL, f"the consensus engine stopped: {failure!r} (see the node log)")
