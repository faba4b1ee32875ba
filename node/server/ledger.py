"""The ledger a node keeps: the chain store plus the contracts that execute it.

This is the seam between consensus and application (CometBFT's ABCI): `build_block`
makes a proposal from the head, `check_proposal` is what a validator checks before
voting, `execute` computes results and state changes without persisting, and
`commit` persists block, certificate and state in one synced batch.

Storage faults (docs/storage-faults.md): `open` refuses a damaged store (hash chain,
state root, write-ahead log) with `store_damaged` and a filesystem without its reserve
of free space with `disk_full`; a write that fails while the node runs ends the process
through `stop_for_storage_fault`, so that no committed block is skipped and no vote is
sent without its write-ahead record.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import contracts
from consensus.records import decode_record
from node.server.txindex import index_terms
from primitives import codec
from primitives.block import Block, Commit, Head, Header, check_successor, head_settled, txs_root
from primitives.errors import Code, GodownError, NodeFault
from primitives.genesis import Genesis
from primitives.hashing import EMPTY_ROOT
from primitives.tx import SignedTx
from storage.chain import ChainStore, ProvenEntry
from storage.kv import MemoryKV
from storage.space import SpaceWatch

log = logging.getLogger("godown.ledger")

EXIT_DISK_FULL = 75
"""Exit status after a write failed for lack of space (sysexits' EX_TEMPFAIL: start
again once space is freed)."""
EXIT_STORE_FAULT = 74
"""Exit status after a write failed for another reason, or a read found the store
damaged (sysexits' EX_IOERR)."""


DAMAGED_ADVICE = (
    "the node does not start on a damaged store: move its data dir aside (keep it for inspection) and start"
    " with an empty one, which fetches the chain from peers or joins by state sync (docs/storage-faults.md)"
)


def stop_for_storage_fault(fault: NodeFault, doing: str, **fields: int | str) -> NoReturn:
    """End the process after a write to the store failed (or a read found it damaged)
    while the node runs.

    Why not carry on: a committed block that cannot be stored must not be skipped, and a
    consensus vote must not be sent before its write-ahead record is durable; the store
    handle refuses writes after a failure anyway (`storage.kv.WriteFailed`). Every block
    and record acknowledged before was synced, so the next start recovers from disk and
    catches up from peers. The process ends at once (as after a crash) rather than
    through the event loop, whose callers could swallow an exception.
    """
    assert fault.code in (Code.DISK_FULL, Code.INTERNAL, Code.STORE_DAMAGED), fault.code
    status = EXIT_DISK_FULL if fault.code is Code.DISK_FULL else EXIT_STORE_FAULT
    try:  # the log may sit on the full disk too: whatever happens here, the process ends
        log.critical(
            "storage fault: node stopping",
            extra={"code": fault.code.value, "doing": doing, "reason": fault.message, **fields},
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        advice = "free space, then start the node again" if fault.code is Code.DISK_FULL else "check the disk"
        sys.stderr.write(f"error [{fault.code.value}]: {doing} failed: {fault.message}; {advice}\n")
        sys.stderr.flush()
    finally:
        os._exit(status)


def check_wal_records(store: ChainStore) -> None:
    """Every consensus write-ahead record must decode: the replica rebuilds its votes from
    them, so an unreadable one is `store_damaged`, named by its sequence number."""
    for seq, raw in store.wal_entries():
        try:
            decode_record(raw)
        except GodownError as exc:
            raise NodeFault(
                Code.STORE_DAMAGED,
                f"store damaged: consensus write-ahead log record {seq} is unreadable ({exc.message}): the node"
                f" cannot know which votes it sent; {DAMAGED_ADVICE}",
            ) from None


class SignatureCache:
    """Verify each transaction's signature once per node. Keyed by tx id *and*
    signature (the id covers only the unsigned bytes), remembering the key it
    verified against. Safe to mark from worker threads (`node.server.sigpool`)."""

    def __init__(self, capacity: int = 500_000) -> None:
        self._ok: OrderedDict[bytes, bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def known(self, stx: SignedTx, sign_pub: bytes) -> bool:
        return self._ok.get(stx.tx_id + stx.sig) == sign_pub

    def verify(self, stx: SignedTx, sign_pub: bytes) -> bool:
        if self.known(stx, sign_pub):
            return True
        if not stx.verify(sign_pub):
            return False
        self.mark(stx, sign_pub)
        return True

    def mark(self, stx: SignedTx, sign_pub: bytes) -> None:
        """Record a signature already checked elsewhere (e.g. by a worker pool)."""
        with self._lock:
            self._ok[stx.tx_id + stx.sig] = sign_pub
            if len(self._ok) > self._capacity:
                self._ok.popitem(last=False)


PRUNE_HEIGHTS_PER_COMMIT = 2
"""How many old heights one commit prunes at most: steady state needs one, the second
lets a node that just turned pruning on catch up without a pause (each height costs a
block decode and its deletes)."""


class Ledger:
    """Chain store + contracts for one chain; single-threaded use."""

    def __init__(self, store: ChainStore, genesis: Genesis, keep_blocks: int = 0) -> None:
        self.store = store
        self.genesis = genesis
        self.keep_blocks = keep_blocks  # history kept: the newest N blocks (0: all, from genesis)
        self.signatures = SignatureCache()
        self.space: SpaceWatch | None = None  # free space of the data dir (None: a store in memory)

    @staticmethod
    def open(data_dir: str | Path | None, genesis: Genesis, keep_blocks: int = 0) -> Ledger:
        """Open (or create) the store; refuse one that belongs to another genesis, is
        damaged, or sits on a filesystem without its reserve of free space. With
        `keep_blocks`, each commit prunes the history older than the newest that many
        blocks (`prune_history`)."""
        space: SpaceWatch | None = None
        if data_dir is not None:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            space = SpaceWatch(data_dir)
            space.require_room("the node does not start until space is freed (nothing committed is lost)")
        try:
            store = ChainStore.open(MemoryKV()) if data_dir is None else ChainStore.open_path(Path(data_dir) / "chain")
        except NodeFault as fault:
            if fault.code is not Code.STORE_DAMAGED:
                raise
            raise NodeFault(Code.STORE_DAMAGED, f"{fault.message}; {DAMAGED_ADVICE}") from None
        try:
            check_wal_records(store)
            if not store.is_initialized:
                store.init_genesis(genesis.hash(), contracts.genesis_state(genesis))
            elif store.genesis_hash != genesis.hash():
                raise GodownError(Code.BAD_CONFIG, f"data in {data_dir} belongs to another genesis")
        except BaseException:
            store.close()
            raise
        ledger = Ledger(store, genesis, keep_blocks)
        ledger.space = space
        ledger.keep_missing_proof()
        ledger.index_old_blocks()
        return ledger

    def close(self) -> None:
        self.store.close()

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def height(self) -> int:
        return self.store.head_height

    def head_hash(self) -> bytes:
        return self.store.head_hash

    def head(self) -> Head:
        """The executed head a new block must extend."""
        header = self.store.get_header(self.height)
        state_root = self.store.state_root
        return Head(
            self.chain_id,
            self.height,
            self.head_hash(),
            header.time_ms if header else self.genesis.genesis_time_ms,
            state_root,
            self.last_results_root(),
            head_settled(header, state_root),
        )

    def wants_empty_block(self, now_ms: int) -> bool:
        """Whether a primary should propose the one empty block that certifies the head:
        the head is unsettled and the chain has been quiet for `empty_block_after_ms`."""
        after = self.genesis.consensus.empty_block_after_ms
        if after <= 0:
            return False
        head = self.head()
        return not head.settled and now_ms >= head.time_ms + after

    def head_time_ms(self) -> int:
        header = self.store.get_header(self.height)
        return header.time_ms if header else self.genesis.genesis_time_ms

    def last_results_root(self) -> bytes:
        root = self.store.results_root_at(self.height)
        return EMPTY_ROOT if root is None else root

    @property
    def state(self) -> contracts.StateReader:
        return self.store.state

    def verify(self, stx: SignedTx, sign_pub: bytes) -> bool:
        return self.signatures.verify(stx, sign_pub)

    def admit(self, stx: SignedTx, now_ms: int) -> None:
        """Mempool admission against committed state; raises `Rejected`. The nonce may run
        ahead of the committed one by `contracts.NONCE_WINDOW`."""
        contracts.admit(self.state, stx, self.verify, self.chain_id, now_ms)

    def build_block(self, txs: Sequence[SignedTx], time_ms: int, view: int, proposer: str) -> Block:
        """A proposal on top of the executed head."""
        header = Header(
            chain_id=self.chain_id,
            height=self.height + 1,
            prev_hash=self.head_hash(),
            time_ms=max(time_ms, self.head_time_ms() + 1),
            view=view,
            proposer=proposer,
            txs_root=txs_root(txs),
            state_root=self.store.state_root,
            results_root=self.last_results_root(),
        )
        return Block(header, tuple(txs))

    def check_proposal(self, block: Block, now_ms: int | None = None, max_drift_ms: int | None = None) -> None:
        """What a validator checks of a block on top of its executed head before voting for it."""
        check_successor(block, self.head(), self.genesis.consensus.empty_block_after_ms)
        h = block.header
        if now_ms is not None and max_drift_ms is not None and h.time_ms > now_ms + max_drift_ms:
            # only the future is bounded: a node catching up votes on blocks made earlier,
            # and the past is bounded by the previous block's time
            raise GodownError(
                Code.BAD_BLOCK, f"block {h.height}: time is {h.time_ms - now_ms} ms ahead of this node's clock"
            )

    def execute(self, block: Block) -> contracts.BlockOutcome:
        """Results and state changes of a block on top of the head; persists nothing."""
        ctx = contracts.BlockContext(self.chain_id, block.height, block.header.time_ms, block.header.proposer)
        return contracts.execute_block(self.state, ctx, block.txs, self.verify)

    def commit(self, block: Block, commit: Commit, outcome: contracts.BlockOutcome) -> bytes:
        """Persist block (with results), certificate, state changes and the contracts' events
                in one synced batch (the events are what `/v1/events?from_height` replays; the index
        terms are what `/v1/txs` finds transactions by, node/server/txindex.py)."""
        events = codec.encode([dict(ev) for ev in outcome.events])
        terms = [index_terms(t) for t in block.txs]
        root = self.store.commit_block(block.with_results(outcome.results), commit, outcome.changes, events, terms)
        if outcome.changes.get(contracts.SCHEDULED_SET_KEY) is not None:
            self.store.keep_proof(contracts.SCHEDULED_SET_KEY)
        self.prune_history()
        return root

    def prune_history(self, most: int = PRUNE_HEIGHTS_PER_COMMIT) -> int:
        """Drop the history (block, certificate, events, tx and entity index entries) of up
        to `most` of the oldest heights beyond the newest `keep_blocks`; returns how many.
        What stays answers every state query, serves snapshots and lets peers within the
        window catch up by blocks; a replay from genesis needs a node that keeps all.
        Pruning is housekeeping: a stored block it cannot read stops it (logged), not
        the node."""
        store = self.store
        if self.keep_blocks <= 0:
            return 0
        through = min(store.head_height - self.keep_blocks, store.base_height + most)
        if through <= store.base_height:
            return 0
        try:
            return store.prune_through(through, index_terms)
        except NodeFault:
            raise  # a write that failed, or damage the store reports: as for any other write
        except GodownError as exc:  # an old block that no longer reads: keep serving, stop pruning
            log.error("pruning stopped", extra={"code": exc.code.value, "through": through, "reason": exc.message})
            self.keep_blocks = 0
            return 0

    def index_old_blocks(self, per_batch: int = 1000) -> None:
        """Give the blocks of a store written before the entity index existed their index
        entries (once: the store then records that every block has them)."""
        store = self.store
        if store.terms_complete:
            return
        low, high = store.base_height + 1, store.head_height
        if high >= low:
            log.info("indexing stored blocks for /v1/txs", extra={"from": low, "to": high})
        for start in range(low, high + 1, per_batch):
            heights = range(start, min(start + per_batch, high + 1))
            blocks = [(h, store.get_block(h)) for h in heights]
            store.index_terms_of([(h, [index_terms(t) for t in b.txs]) for h, b in blocks if b is not None])
        store.index_terms_of([], done=True)

    def keep_missing_proof(self) -> None:
        """After a crash between a block that scheduled a validator set and the keeping of
        its proof (the next write), the head is still that block: keep the proof now."""
        raw = self.state.get(contracts.SCHEDULED_SET_KEY)
        if raw is None or contracts.ScheduledSet.decode(raw).approved_height != self.height:
            return
        if all(p.height != self.height for p in self.store.kept_proofs(contracts.SCHEDULED_SET_KEY)):
            self.store.keep_proof(contracts.SCHEDULED_SET_KEY)

    def validator_changes(self) -> list[ProvenEntry]:
        """Each scheduled validator set this node executed, proven at its approving height."""
        return self.store.kept_proofs(contracts.SCHEDULED_SET_KEY)

    def check_commit(self, block: Block, commit: Commit) -> None:
        """A block fetched from elsewhere: its certificate must verify against the validators
        that govern its height (a scheduled validator-set change applies above its height)."""
        commit.verify(contracts.governing_validators(self.state, block.height), block.header)
