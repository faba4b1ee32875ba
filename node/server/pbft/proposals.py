"""Proposals between their arrival and their execution: each decoded once (whether
we first meet it to vote or to execute), its signatures checked on worker threads
as early as possible, and one that is ahead of our executed head held until its
parent executes (header h carries the state root after h-1, DESIGN §3)."""

from __future__ import annotations

from concurrent.futures import Future

from consensus.messages import PrePrepare
from node.server.core import NodeCore
from primitives.block import Block
from primitives.errors import GodownError

MAX_DECODED = 64
"""Decoded proposals kept before the cache is dropped (ones that never committed)."""


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
    """Decoded proposals, their signature checks, and proposals held for later."""

    def __init__(self, core: NodeCore) -> None:
        self.core = core
        self._held: dict[int, tuple[str, PrePrepare]] = {}
        self._decoded: dict[bytes, Block] = {}  # proposals decoded while voting, until executed
        self._sig_checks: dict[bytes, list[Future[None]]] = {}  # proposals' signatures being checked

    def decode(self, payload: bytes) -> Block:
        """Decode a proposal once, whether we first meet it to vote or to execute."""
        block = self._decoded.get(payload)
        if block is None:
            block = Block.decode(payload)
            self._decoded[payload] = block
        return block

    def remember(self, payload: bytes, block: Block) -> None:
        """Our own proposal: already decoded."""
        self._decoded[payload] = block

    def hold(self, peer: str, pp: PrePrepare) -> None:
        self._held[pp.height] = (peer, pp)

    def take_held(self, height: int) -> tuple[str, PrePrepare] | None:
        """The proposal held for `height`, now that its parent executed; drops any
        held for heights at or below `height - 1`."""
        held = self._held.pop(height, None)
        for h in [h for h in self._held if h < height]:
            del self._held[h]
        return held

    def drop_held(self) -> None:
        self._held.clear()

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
        self._decoded.pop(payload, None)
        checks = self._sig_checks.pop(payload, None)
        if len(self._decoded) > MAX_DECODED:  # proposals that never committed
            self._decoded.clear()
            self._sig_checks.clear()
        return block, checks
