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

    @property
    def catching_up(self) -> bool:
        """Whether we asked for blocks within the last second."""
        return time.monotonic() < self._fetching_until

    def request(self, action: FetchBlocks) -> None:
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
