"""Byzantine behaviour of a real node, for fault tests only (CometBFT's e2e `misbehaviors`).

A node turns one on only when it is started with the hidden `godown node start
--misbehave KIND[:ARG]` flag *and* the environment says `GODOWN_TEST_SWITCHES=1`;
no key of the node config can do it, so a production config cannot turn it on by
accident. The node then logs a warning on start and on every act.

What each kind does (the driver calls `outgoing` for every frame it sends, `tick`
on every tick, and `choose` with the transactions of every block it proposes):

- `equivocate`: as primary, send one block to half of the backups and a different
  block (same transactions, another time) for the same (view, height) to the rest;
- `forge`: as primary, put a copy of a pending client transaction with a forged
  signature into each block (its sender's real transaction must still commit);
- `garbage`: every second send each peer random bytes, malformed consensus
  messages and blocks, and an oversize frame;
- `silent`: send nothing at all;
- `replay`: every second re-send a batch of our own earlier consensus messages;
- `conflict`: with every PREPARE and COMMIT also send one for another digest;
- `censor:MEMBER`: as primary, leave out every transaction sent by MEMBER;
- `flood`: every tick send every peer PRE-PREPAREs for heights far ahead, each
  carrying a real block of signed transactions (memory and CPU for the receiver).

Twins (two processes on one validator key) need no code here: a test starts a
second node with a copy of the key.
"""

from __future__ import annotations

import logging
import os
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from consensus.messages import CommitVote, Prepare, PrePrepare, decode_message, encode_message
from node.server.core import NodeCore, now_ms
from node.server.pbft.frames import BLOCKS, CONSENSUS, MAX_FRAME, encode_frame
from primitives.block import Block
from primitives.errors import Code, GodownError
from primitives.tx import SignedTx

log = logging.getLogger("godown.misbehaviour")

ENV_SWITCH = "GODOWN_TEST_SWITCHES"
KINDS = ("equivocate", "forge", "garbage", "silent", "replay", "conflict", "censor", "flood")
REPLAY_KEEP = 512  # our own consensus messages kept for replaying
FLOOD_PER_TICK = 8
FLOOD_TXS = 200

Outgoing = list[tuple[str | None, dict[str, Any]]]
"""Frames to send instead: (peer, or None for every peer; frame document)."""


@dataclass(frozen=True)
class Misbehaviour:
    kind: str
    arg: str = ""

    @classmethod
    def parse(cls, spec: str, environ: dict[str, str] | None = None) -> Misbehaviour:
        """`KIND[:ARG]`, refused (bad_config) unless the test switch is on in the environment."""
        env = os.environ if environ is None else environ
        if env.get(ENV_SWITCH) != "1":
            raise GodownError(Code.BAD_CONFIG, f"--misbehave is a test switch: it needs {ENV_SWITCH}=1")
        kind, _, arg = spec.partition(":")
        if kind not in KINDS:
            raise GodownError(Code.BAD_CONFIG, f"unknown misbehaviour {kind!r}; one of {', '.join(KINDS)}")
        if kind == "censor" and not arg:
            raise GodownError(Code.BAD_CONFIG, "censor needs the member to censor: censor:MEMBER")
        return cls(kind, arg)


class Saboteur:
    """Carries out one `Misbehaviour` for a driver (see the module docstring)."""

    def __init__(
        self,
        what: Misbehaviour,
        core: NodeCore,
        peers: Callable[[], list[str]],
        view: Callable[[], int],
        raw_send: Callable[[str, bytes], None],
    ) -> None:
        self.what = what
        self.core = core
        self.peers = peers
        self.view = view
        self.raw_send = raw_send
        self.rng = random.Random(f"{core.node_id}:{what.kind}")
        self._sent: deque[bytes] = deque(maxlen=REPLAY_KEEP)
        self._ticks = 0
        self.acts = 0
        log.warning("MISBEHAVING (test switch)", extra={"kind": what.kind, "arg": what.arg})

    # ---- hooks --------------------------------------------------------------------------
    def outgoing(self, peer: str | None, doc: dict[str, Any]) -> Outgoing:
        kind = self.what.kind
        if kind == "silent":
            self._acted()
            return []
        if doc.get("t") != CONSENSUS:
            return [(peer, doc)]
        if kind == "replay":
            self._sent.extend(doc["m"])
        elif kind == "conflict":
            return [(peer, {"t": CONSENSUS, "m": [*doc["m"], *self._conflicting(doc["m"])]})]
        elif kind == "equivocate" and peer is None:
            return self._equivocate(doc)
        return [(peer, doc)]

    def tick(self) -> Outgoing:
        self._ticks += 1
        kind = self.what.kind
        if kind == "garbage" and self._ticks % 100 == 0:
            self._garbage()
        elif kind == "replay" and self._ticks % 100 == 0 and self._sent:
            self._acted()
            batch = self.rng.sample(list(self._sent), min(64, len(self._sent)))
            return [(None, {"t": CONSENSUS, "m": batch})]
        elif kind == "flood":
            return self._flood()
        return []

    def choose(self, txs: list[SignedTx]) -> tuple[list[SignedTx], list[SignedTx]]:
        """(transactions to propose, transactions to put back into the mempool)."""
        kind = self.what.kind
        if kind == "censor":
            kept = [t for t in txs if t.tx.sender != self.what.arg]
            left = [t for t in txs if t.tx.sender == self.what.arg]
            if left:
                self._acted()
            return kept, left
        if kind == "forge" and txs:
            victim = txs[0]
            self._acted()
            return [SignedTx(victim.tx, victim.tx_bytes, bytes(64)), *txs[1:]], [victim]  # the real one goes back
        return txs, []

    # ---- the acts -----------------------------------------------------------------------
    def _acted(self) -> None:
        self.acts += 1
        if self.acts in (1, 10, 100, 1000) or self.acts % 10_000 == 0:
            log.warning("misbehaved", extra={"kind": self.what.kind, "acts": self.acts})

    def _sign(self, view: int, height: int, digest: bytes, payload: bytes) -> PrePrepare:
        unsigned = PrePrepare(view, height, digest, payload, self.core.node_id, b"")
        sig = self.core.key.sign(unsigned.signed_bytes(self.core.genesis.chain_id))
        return PrePrepare(view, height, digest, payload, self.core.node_id, sig)

    def _equivocate(self, doc: dict[str, Any]) -> Outgoing:
        """Our PRE-PREPAREs go to the first half of the peers as they are; the second half
        gets another block for the same (view, height)."""
        twin: list[bytes] = []
        for raw in doc["m"]:
            msg = decode_message(raw)
            if isinstance(msg, PrePrepare) and msg.sender == self.core.node_id:
                block = Block.decode(msg.payload)
                other = Block(replace(block.header, time_ms=block.header.time_ms + 1), block.txs)
                payload = other.encode()
                twin.append(encode_message(self._sign(msg.view, msg.height, Block.hash_of(payload), payload)))
                self._acted()
            else:
                twin.append(raw)
        if twin == doc["m"]:
            return [(None, doc)]
        peers = sorted(self.peers())
        half = len(peers) // 2 or 1
        first: Outgoing = [(p, doc) for p in peers[:half]]
        return first + [(p, {"t": CONSENSUS, "m": twin}) for p in peers[half:]]

    def _conflicting(self, raws: list[bytes]) -> list[bytes]:
        """A second, validly signed PREPARE or COMMIT for a digest nobody proposed."""
        out: list[bytes] = []
        chain_id = self.core.genesis.chain_id
        for raw in raws:
            msg = decode_message(raw)
            if isinstance(msg, (Prepare, CommitVote)) and msg.sender == self.core.node_id:
                digest = self.rng.randbytes(32)
                unsigned = type(msg)(msg.view, msg.height, digest, msg.sender, b"")
                out.append(encode_message(type(msg)(msg.view, msg.height, digest, msg.sender,
                                                    self.core.key.sign(unsigned.signed_bytes(chain_id)))))  # fmt: skip
                self._acted()
        return out

    def _garbage(self) -> None:
        """Random bytes, well-formed frames carrying junk, and a frame above the limit."""
        rng = self.rng
        junk = [
            rng.randbytes(rng.randrange(1, 4096)),
            encode_frame({"t": CONSENSUS, "m": [rng.randbytes(200), b"", b"\xc1"]}),
            encode_frame({"t": BLOCKS, "blocks": [[rng.randbytes(300), rng.randbytes(100)]]}),
            encode_frame({"t": "f", "from": 0, "to": 10**15}),
            encode_frame({"t": "x", "txs": [rng.randbytes(500)]}),
            encode_frame({"t": "zz"}),
        ]
        oversize = b"\x00" * (MAX_FRAME + 1)
        for peer in self.peers():
            for frame in junk:
                self.raw_send(peer, frame)
            if self._ticks % 1000 == 0:
                self.raw_send(peer, oversize)
        self._acted()

    def _flood(self) -> Outgoing:
        """PRE-PREPAREs for heights far ahead of the chain, each with a real block of
        signed transactions (the node's recent ones), signed by us."""
        core = self.core
        store = core.ledger.store
        txs: list[SignedTx] = []
        h = store.head_height
        while h > 0 and len(txs) < FLOOD_TXS:
            block = store.get_block(h)
            if block is not None:
                txs.extend(block.txs)
            h -= 1
        if not txs:
            return []
        block = core.ledger.build_block(txs[:FLOOD_TXS], now_ms(), view=self.view(), proposer=core.node_id)
        payload = block.encode()
        digest = Block.hash_of(payload)
        base = core.ledger.height + 2
        msgs = [
            encode_message(self._sign(self.view(), base + self.rng.randrange(1, 1_000_000), digest, payload))
            for _ in range(FLOOD_PER_TICK)
        ]
        self._acted()
        return [(None, {"t": CONSENSUS, "m": msgs})]
