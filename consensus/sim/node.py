"""Simulated drivers: an honest node (persist → send → execute, exactly as the real
node must) and a Byzantine one that runs an honest replica and then lies.

With validator-set changes the node does what the real driver must: after applying
the block that approved a change, and before `on_executed` of that height, it calls
`Replica.schedule_validators`; on restart it passes every change approved by a block
in its store as `changes`. It broadcasts to every node of the run (observers and
validators to be), as the real node gossips to every node that follows the chain."""

from __future__ import annotations

from collections import Counter

from consensus.actions import Broadcast, Execute, FetchBlocks, Persist, Ready, Send
from consensus.config import ReplicaConfig
from consensus.membership import ValidatorChange
from consensus.messages import (
    Checkpoint,
    CommitVote,
    Message,
    Prepare,
    PrePrepare,
    checkpoint_vote_bytes,
    decode_message,
    encode_message,
)
from consensus.replica import Replica
from consensus.signing import Signer, Verifier
from consensus.sim.invariants import Checker
from consensus.sim.network import Network
from primitives.block import Commit
from primitives.errors import Code, GodownError
from primitives.hashing import sha256
from primitives.seeded import Rng, seeded

FETCH_LIMIT = 64


GENESIS_PARENT = b"0" * 64


def digest_of(payload: bytes) -> bytes | None:
    """The simulator's block digest: SHA-256 of a payload shaped `parent-hex|batch`."""
    return sha256(payload) if len(payload) > 65 and payload[64:65] == b"|" else None


def make_payload(parent: bytes | None, batch: bytes) -> bytes:
    """A simulated block: the hex digest of its parent (like a header's prev_hash), then the batch."""
    return (parent.hex().encode() if parent else GENESIS_PARENT) + b"|" + batch


def batch_of(payload: bytes) -> bytes:
    return payload[65:]


def parent_of(payload: bytes) -> bytes:
    return payload[:64]


def parent_digest(payload: bytes) -> bytes | None:
    """What the replica's `parent_of` needs: the parent as a digest (None if unreadable)."""
    try:
        return bytes.fromhex(payload[:64].decode())
    except ValueError:
        return None


class SimNode:
    """One correct node: replica, write-ahead records, block store and mempool."""

    def __init__(
        self,
        config: ReplicaConfig,
        signer: Signer,
        verifier: Verifier,
        net: Network,
        checker: Checker,
        rng: Rng,
        forget_wal: bool = False,
        peers: tuple[str, ...] = (),
        changes: tuple[tuple[int, ValidatorChange], ...] = (),
    ) -> None:
        self.id = config.node_id
        self.peers = peers or config.validators
        """Every node of the run, in order: the broadcast targets."""
        self.changes = changes
        """(height of the approving block, change): the application's decisions."""
        self.config = config
        self.signer = signer
        self.verifier = verifier
        self.net = net
        self.checker = checker
        self.rng = rng
        self.forget_wal = forget_wal
        self.records: list[bytes] = []
        self.chain: list[tuple[bytes, Commit]] = []
        self.root = bytes(32)
        self.mempool: dict[bytes, None] = {}
        self.up = True
        self.replica = self._new_replica()
        self.rejected = 0
        self.refused: Counter[Code] = Counter()
        """Rejections by code (tests check, e.g., that a removed validator's votes were refused)."""

    def _new_replica(self) -> Replica:
        records = [] if self.forget_wal else list(self.records)
        done = tuple(change for h, change in self.changes if h <= len(self.chain))
        return Replica(
            self.config,
            self.signer,
            self.verifier,
            digest_of,
            seeded(self.rng.random()),
            records=records,
            last_executed=len(self.chain),
            validate=self.validate,
            parent_of=parent_digest,
            changes=done,
        )

    def validate(self, height: int, payload: bytes, parent: bytes | None) -> bool:
        """The node's check of a fresh proposal: it must extend the block the replica holds
        at height-1 (or, below the replica's log, the block in our store)."""
        if parent is None:
            if height == 1:
                return parent_of(payload) == GENESIS_PARENT
            if height - 1 <= len(self.chain):
                return parent_of(payload) == sha256(self.chain[height - 2][0]).hex().encode()
            return True
        return parent_of(payload) == parent.hex().encode()

    def crash(self) -> None:
        self.up = False

    def restart(self) -> None:
        self.up = True
        self.replica = self._new_replica()

    # inputs from the simulation
    def on_tick(self) -> None:
        if self.mempool:
            self.handle(self.replica.expect_progress())
        while self.replica.can_propose:
            busy = {batch_of(p) for p in self.replica.in_flight_payloads()}
            batch = next((b for b in self.mempool if b not in busy), None)
            if batch is None:
                break
            h = self.replica.next_height
            parent = self.replica.digest_at(h - 1)
            if parent is None and 1 < h <= len(self.chain) + 1:
                parent = sha256(self.chain[h - 2][0])
            payload = make_payload(parent, batch)
            self.checker.proposed.add(payload)
            self.handle(self.replica.propose(payload))
        self.handle(self.replica.tick())

    def on_message(self, src: str, data: bytes) -> None:
        try:
            msg = decode_message(data)
        except GodownError:
            self.rejected += 1
            return
        self.handle(self.replica.step(msg))

    def on_fetch_request(self, src: str, lo: int, hi: int) -> None:
        blocks = self.chain[lo - 1 : min(hi, lo - 1 + FETCH_LIMIT)]
        if blocks:
            self.net.send(self.id, src, "fetch_resp", tuple(blocks))

    def on_fetch_response(self, blocks: tuple[tuple[bytes, Commit], ...]) -> None:
        for payload, cert in blocks:
            self.handle(self.replica.on_fetched(payload, cert))

    # the driver contract: persist, then send, then execute, then fetch
    def handle(self, ready: Ready) -> None:
        self.rejected += len(ready.rejections)
        for r in ready.rejections:
            self.refused[r.code] += 1
        for action in ready.actions:
            if isinstance(action, Persist):
                self.records.append(action.record)
            elif isinstance(action, Broadcast):
                self.broadcast(action.message)
            elif isinstance(action, Send):
                self.send(action.to, action.message)
            elif isinstance(action, Execute):
                self.execute(action)
            elif isinstance(action, FetchBlocks):
                for peer in action.peers[:2]:
                    self.net.send(self.id, peer, "fetch_req", action.from_height, action.to_height)

    def execute(self, action: Execute) -> None:
        self.checker.on_commit(self.id, action.height, action.payload)
        self.checker.on_certificate(self.id, action.certificate)
        self.apply(action)

    def apply(self, action: Execute) -> None:
        """Store and execute the block, apply the validator changes it approved, then report it."""
        self.chain.append((action.payload, action.certificate))
        self.root = sha256(self.root + action.payload)
        self.mempool.pop(batch_of(action.payload), None)
        for h, change in self.changes:
            if h == action.height:
                r = self.replica
                self.handle(r.schedule_validators(change.after_height, change.validators, change.keys))
        self.handle(self.replica.on_executed(action.height, self.root))

    def broadcast(self, msg: Message) -> None:
        data = encode_message(msg)
        for peer in self.peers:
            if peer != self.id:
                self.net.send(self.id, peer, "msg", data)

    def send(self, to: str, msg: Message) -> None:
        self.net.send(self.id, to, "msg", encode_message(msg))


class ByzantineNode(SimNode):
    """Runs an honest replica, then lies with it: equivocates as primary, sends conflicting
    votes, garbage and replayed messages, or stays silent — per its `modes`. The mode
    "zombie" (never drawn by default) acts once removed from the validator set: it keeps
    signing PREPAREs, COMMITs and CHECKPOINTs, for the block it holds and for nonsense."""

    def __init__(self, *args: object, modes: tuple[str, ...], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.modes = modes
        self.seen: list[bytes] = []
        self.evil: dict[tuple[int, int], bytes] = {}

    def execute(self, action: Execute) -> None:  # a liar's own commits are not checked
        self.apply(action)

    def on_message(self, src: str, data: bytes) -> None:
        if "replay" in self.modes and len(self.seen) < 500:
            self.seen.append(data)
        super().on_message(src, data)

    def on_tick(self) -> None:
        super().on_tick()
        peers = [p for p in self.peers if p != self.id]
        if "garbage" in self.modes and self.rng.random() < 0.3:
            junk = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(0, 80)))
            self.net.send(self.id, self.rng.choice(peers), "msg", junk)
            real = bytearray(self.rng.choice(self.seen)) if self.seen else bytearray()
            if real:
                real[self.rng.randrange(len(real))] ^= 0xFF
                self.net.send(self.id, self.rng.choice(peers), "msg", bytes(real))
        if "replay" in self.modes and self.seen and self.rng.random() < 0.5:
            self.net.send(self.id, self.rng.choice(peers), "msg", self.rng.choice(self.seen))
        if "zombie" in self.modes and not self.replica.is_validator and self.rng.random() < 0.3:
            self._haunt(peers)

    def _haunt(self, peers: list[str]) -> None:
        """Vote on as if still a validator: every honest replica must refuse these."""
        r, cid = self.replica, self.config.chain_id
        h = r.last_committed + self.rng.randint(1, 2)
        real = r.digest_at(h)
        d = real if real is not None and self.rng.random() < 0.5 else sha256(b"zombie:%d" % h)
        votes: list[Message] = [
            Prepare(r.view, h, d, self.id, self.signer.sign(Prepare(r.view, h, d, self.id, b"").signed_bytes(cid))),
            CommitVote(
                r.view, h, d, self.id, self.signer.sign(CommitVote(r.view, h, d, self.id, b"").signed_bytes(cid))
            ),
        ]
        c = (h // self.config.checkpoint_interval + 1) * self.config.checkpoint_interval
        root = sha256(b"zombie-root:%d" % c)
        votes.append(Checkpoint(c, root, self.id, self.signer.sign(checkpoint_vote_bytes(cid, c, root))))
        for peer in peers:
            for m in votes:
                self.net.send(self.id, peer, "msg", encode_message(m))

    def broadcast(self, msg: Message) -> None:
        if "silent" in self.modes:
            return
        peers = [p for p in self.peers if p != self.id]
        cid = self.config.chain_id
        # Lie to every other validator of the current set (observers hear the truth): half
        # the honest validators, so the lie can win no quorum without honest help.
        lied_to = set([p for p in self.replica.validators if p != self.id][1::2])
        for peer in peers:
            out = msg
            if "equivocate" in self.modes and isinstance(msg, PrePrepare) and peer in lied_to:
                payload = msg.payload + b"#evil"
                self.checker.proposed.add(payload)
                d = sha256(payload)
                probe = PrePrepare(msg.view, msg.height, d, payload, self.id, b"")
                out = PrePrepare(msg.view, msg.height, d, payload, self.id, self.signer.sign(probe.signed_bytes(cid)))
                self.evil[(msg.view, msg.height)] = d
            elif (
                isinstance(msg, (Prepare, CommitVote))
                and peer in lied_to
                and ("conflict" in self.modes or (msg.view, msg.height) in self.evil)
            ):
                # Vote for what we told this half (equivocation), or for nonsense (conflict).
                d = self.evil.get((msg.view, msg.height), sha256(msg.digest + b"#other"))
                if isinstance(msg, Prepare):
                    pv = Prepare(msg.view, msg.height, d, self.id, b"")
                    out = Prepare(msg.view, msg.height, d, self.id, self.signer.sign(pv.signed_bytes(cid)))
                else:
                    cv = CommitVote(msg.view, msg.height, d, self.id, b"")
                    out = CommitVote(msg.view, msg.height, d, self.id, self.signer.sign(cv.signed_bytes(cid)))
            self.net.send(self.id, peer, "msg", encode_message(out))

    def send(self, to: str, msg: Message) -> None:
        if "silent" not in self.modes:
            super().send(to, msg)

    def on_fetch_request(self, src: str, lo: int, hi: int) -> None:
        if "silent" in self.modes:
            return
        if "garbage" in self.modes or "equivocate" in self.modes:
            # Forged blocks with forged certificates: an honest replica must refuse them.
            fake = []
            for h in range(lo, min(hi, lo + 4) + 1):
                payload = make_payload(None, b"forged:%d" % h)
                votes = tuple(sorted((v, bytes(64)) for v in self.config.validators))
                fake.append((payload, Commit(self.config.chain_id, h, 0, sha256(payload), votes)))
            self.net.send(self.id, src, "fetch_resp", tuple(fake))
            return
        super().on_fetch_request(src, lo, hi)
