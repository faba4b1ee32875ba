"""Proposals between their arrival and their execution: each decoded once (whether
we first meet it to vote or to execute), its signatures checked on worker threads
as early as possible, and one that is ahead of our executed head held until its
parent executes (header h carries the state root after h-1, DESIGN §3)."""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future

from consensus.messages import PrePrepare
from node.server.core import NodeCore
from primitives.block import Block
from primitives.errors import GodownError

MAX_DECODED = 64
"""Decoded proposals kept (with their signature checks) until they execute; beyond it the
oldest is forgotten (a proposal that never committed) and decoded again if it is needed."""
MAX_DECODED_BYTES = 128 * 1024 * 1024
MAX_HELD_BYTES = 64 * 1024 * 1024
"""Payload bytes of proposals held for heights we have not executed up to yet. The count is
bounded by the window (one proposal per height); a correct primary's pipeline needs far less."""


def digest_of(payload: bytes) -> bytes | None:
    """The consensus digest of a payload: its block hash (None if it is no block)."""
    try:
        return Block.hash_of(payload)
    except GodownError:
        return None


def parent_of(payload: bytes) -> bytes | None:
    """The block a payload extends (its prev_hash), so consensus keeps blocks linked
    across view changes."""
    try:
        return Block.header_of(payload).prev_hash
    except GodownError:
        return None


class Proposals:
    """Decoded proposals, their signature checks, and proposals held for later. Every map
    is bounded by count and bytes; what is held or decoded here has already been found
    authentic (`Replica.authentic_proposal`) by the driver."""

    def __init__(self, core: NodeCore, max_held: int) -> None:
        self.core = core
        self.max_held = max_held
        self._held: dict[int, tuple[str, PrePrepare]] = {}
        self._held_bytes = 0
        self._decoded: OrderedDict[bytes, Block] = OrderedDict()  # oldest first
        self._decoded_bytes = 0
        self._sig_checks: dict[bytes, list[Future[None]]] = {}  # proposals' signatures being checked

    def decode(self, payload: bytes) -> Block:
        """Decode a proposal once, whether we first meet it to vote or to execute."""
        block = self._decoded.get(payload)
        if block is None:
            block = Block.decode(payload)
            self.remember(payload, block)
        return block

    def remember(self, payload: bytes, block: Block) -> None:
        """A decoded proposal (our own, or one we decoded), kept until it executes."""
        if payload in self._decoded:
            return
        self._decoded[payload] = block
        self._decoded_bytes += len(payload)
        while len(self._decoded) > MAX_DECODED or self._decoded_bytes > MAX_DECODED_BYTES:
            self._forget(next(iter(self._decoded)))

    def _forget(self, payload: bytes) -> None:
        if self._decoded.pop(payload, None) is not None:
            self._decoded_bytes -= len(payload)
        self._sig_checks.pop(payload, None)

    def hold(self, peer: str, pp: PrePrepare) -> bool:
        """Keep an authentic proposal for a height we have not executed up to yet: one per
        height (the later view wins), within `max_held` and `MAX_HELD_BYTES` (the heights
        nearest the chain win). False if it was not kept."""
        old = self._held.get(pp.height)
        if old is not None and old[1].view >= pp.view:
            return False
        size = len(pp.payload)
        if size > MAX_HELD_BYTES:
            return False
        if old is not None:
            self._drop_held(pp.height)
        while self._held and (len(self._held) >= self.max_held or self._held_bytes + size > MAX_HELD_BYTES):
            top = max(self._held)
            if top < pp.height:
                return False
            self._drop_held(top)
        self._held[pp.height] = (peer, pp)
        self._held_bytes += size
        return True

    def _drop_held(self, height: int) -> tuple[str, PrePrepare] | None:
        held = self._held.pop(height, None)
        if held is not None:
            self._held_bytes -= len(held[1].payload)
        return held

    @property
    def held_bytes(self) -> int:
        return self._held_bytes

    def take_held(self, height: int) -> tuple[str, PrePrepare] | None:
        """The proposal held for `height`, now that its parent executed; drops any
        held for heights at or below `height - 1`."""
        held = self._drop_held(height)
        for h in [h for h in self._held if h < height]:
            self._drop_held(h)
        return held

    def drop_held(self) -> None:
        self._held.clear()
        self._held_bytes = 0

    def check_signatures_ahead(self, pp: PrePrepare) -> None:
        """Start checking a proposal's signatures on worker threads as soon as it arrives
        (it may wait for our previous block to execute); execution waits for them."""
        if pp.payload in self._sig_checks or pp.height <= self.core.ledger.height:
            return
        try:
            block = self.decode(pp.payload)
        except GodownError:
            return  # refused as malformed when admitted
        self._sig_checks[pp.payload] = self.core.check_signatures(block.txs)

    def take_for_execution(self, payload: bytes) -> tuple[Block, list[Future[None]] | None]:
        """The decoded block and its pending signature checks, forgotten from here on."""
        block = self.decode(payload)
        checks = self._sig_checks.pop(payload, None)
        self._forget(payload)
        return block, checks
