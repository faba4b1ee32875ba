"""Catch-up by blocks: ask peers in turn for committed blocks with their commit
certificates, and serve our own to peers that are behind, bounded by count and
bytes per frame."""

from __future__ import annotations

import time

from consensus.actions import FetchBlocks
from node.server.pbft.forwarding import SendFrame
from node.server.pbft.frames import BLOCKS, FETCH
from storage.chain import ChainStore

MAX_FETCH_BLOCKS = 64
MAX_FETCH_BYTES = 8 * 1024 * 1024


class BlockFetcher:
    """Requests blocks the replica is missing, and answers other nodes' requests."""

    def __init__(self, store: ChainStore, send: SendFrame) -> None:
        self.store = store
        self.send = send
        self._turn = 0
        self._fetching_until = 0.0
        self._peak = 0

    @property
    def peak(self) -> int:
        """The highest height the replica has asked to fetch up to: one that at least one
        correct peer committed (its catch-up target, the (f+1)-th highest height peers
        signed for), or — when a replica outside the set probes a quiet chain — the end
        of the heights it can judge, which may lie a little above the chain's head."""
        return self._peak

    def behind(self, height: int) -> int:
        """How many blocks a node whose head is `height` lacks of what its peers have shown,
        while it is catching up; 0 once the replica stops asking (it has what they have)."""
        return max(0, self._peak - height) if self.catching_up else 0

    @property
    def catching_up(self) -> bool:
        """Whether we asked for blocks within the last second."""
        return time.monotonic() < self._fetching_until

    def request(self, action: FetchBlocks) -> None:
        self._peak = max(self._peak, action.to_height)
        if not action.peers:
            return
        peer = action.peers[self._turn % len(action.peers)]
        self._turn += 1
        to = min(action.to_height, action.from_height + MAX_FETCH_BLOCKS - 1)
        self.send(peer, {"t": FETCH, "from": action.from_height, "to": to})
        self._fetching_until = time.monotonic() + 1.0

    def serve(self, peer: str, start: int, end: int) -> None:
        store = self.store
        blocks: list[list[bytes]] = []
        size = 0
        for h in range(max(1, start), min(end, store.head_height, start + MAX_FETCH_BLOCKS - 1) + 1):
            raw, commit = store.get_block_bytes(h), store.get_commit(h)
            if raw is None or commit is None:
                break
            size += len(raw)
            blocks.append([raw, commit.encode()])
            if size > MAX_FETCH_BYTES:
                break
        if blocks:
            self.send(peer, {"t": BLOCKS, "blocks": blocks})
