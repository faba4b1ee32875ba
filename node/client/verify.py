"""Checking what a node says against headers certified by 2f+1 validators (a light
client), so a bank or an auditor need not trust the node it asks.

Every answer is checked from the raw bytes the node sends, never from its JSON view:
a block is decoded from `raw` (its `txs_root` recomputed), its hash recomputed, and its
certificate verified against the validator set; a state entry's Merkle proof is checked
against a root, and that root must be the `state_root` of a certified header — the
header of height h+1 certifies the state after h (on a quiet chain the primary cuts the
empty block that does so, docs/protocol.md). A transaction's result is certified by the
`results_root` of the next header.

The validator set is followed from the genesis the caller trusts, never taken from the
node: each governance change is learnt from the scheduled set's state entry, proven
against the state root in the header after its approving block, which the set then in
force certified (`/v1/validators/changes`, docs/protocol.md). A node that lacks a
change's proof (it joined by state sync after it) is refused with `unverified`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import contracts
from node.client.rpc import RpcClient
from primitives.block import Block, Commit, Header, head_settled, quorum_size, results_root
from primitives.errors import Code, GodownError
from primitives.genesis import Genesis
from primitives.state_proof import StateProof, verify_proof

WAIT_S = 5.0
"""How long to wait for the header that certifies the latest state (the next block, or
the empty block a quiet chain gets after `empty_block_after_ms`)."""


@dataclass(frozen=True)
class Certified:
    """A header and how it was certified: by `signers` of `validators` (quorum `quorum`)."""

    header: Header
    signers: int
    validators: int
    quorum: int

    @property
    def height(self) -> int:
        return self.header.height

    def describe(self) -> str:
        return (
            f"certified at height {self.height} by {self.signers} of {self.validators} validators "
            f"(quorum {self.quorum})"
        )


def _unverified(message: str) -> GodownError:
    return GodownError(Code.UNVERIFIED, message)


def certify(block: Block, commit: Commit, validators: dict[str, bytes]) -> Certified:
    """`unverified` unless 2f+1 distinct validators signed this block's hash."""
    try:
        signers = commit.verify(validators, block.header)
    except GodownError as exc:
        raise _unverified(exc.message) from None
    return Certified(block.header, signers, len(validators), quorum_size(len(validators)))


class LightClient:
    """Answers from one node, each checked against a certified header or refused."""

    def __init__(self, rpc: RpcClient, genesis: Genesis, wait_s: float = WAIT_S) -> None:
        self.rpc = rpc
        self.genesis = genesis
        self.wait_s = wait_s
        self._changes: list[tuple[int, dict[str, bytes]]] = []  # (after height, set), verified, in order
        self._followed = False

    def validators_at(self, height: int) -> dict[str, bytes]:
        """Node id → key of the set that certifies `height`, as far as the changes followed
        so far tell (the genesis set, then each change for the heights above its own)."""
        chosen = self.genesis.validator_keys()
        for after, keys in self._changes:
            if height > after:
                chosen = keys
        return chosen

    def follow_changes(self) -> int:
        """Learn the validator-set changes not yet followed, each checked against a root
        certified by the set before it; returns how many are followed."""
        doc = self.rpc.get("/v1/validators/changes")
        try:
            changes, complete = list(doc["changes"]), bool(doc["complete"])
        except (KeyError, TypeError) as exc:
            raise _unverified(f"the validator changes answer is not well formed ({exc})") from None
        if not complete:
            raise _unverified(
                "this node lacks the proof of a validator-set change (it joined by state sync); ask another"
            )
        if len(changes) < len(self._changes):
            raise _unverified("the node reports fewer validator-set changes than this client has followed")
        for change in changes[len(self._changes) :]:
            self._changes.append(self._check_change(change))
        self._followed = True
        return len(self._changes)

    def _check_change(self, change: Any) -> tuple[int, dict[str, bytes]]:
        try:
            entry = change["entry"]
            key, root = bytes.fromhex(entry["key"]), bytes.fromhex(entry["state_root"])
            value = bytes.fromhex(entry["value"])
            proof = StateProof.from_json(entry["proof"])
            height = int(entry["height"])
            scheduled = contracts.ScheduledSet.decode(value)
        except (GodownError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _unverified(f"a validator change is not well formed ({exc})") from None
        if key != contracts.SCHEDULED_SET_KEY or not verify_proof(root, key, value, proof):
            raise _unverified(f"the proof of the validator set approved at height {height} does not hold")
        if scheduled.approved_height != height or (self._changes and height <= self._changes[-1][0]):
            raise _unverified(f"the validator change proven at height {height} is out of order")
        block, cert = self._certified_block(height + 1)
        if block.header.state_root != root:
            raise _unverified(f"the header at height {height + 1} certifies another state than the validator change")
        return scheduled.effective_height, {v.node_id: v.node_pub for v in scheduled.validators}

    def _certified_block(self, height: int) -> tuple[Block, Certified]:
        doc = self.rpc.get(f"/v1/blocks/{height}")
        try:
            block = Block.decode(bytes.fromhex(doc["raw"]))
            block.check_txs_root()
            commit = Commit.decode(bytes.fromhex(doc["commit_raw"] or ""))
        except (GodownError, KeyError, TypeError, ValueError) as exc:
            raise _unverified(f"block {height} does not decode ({exc})") from None
        if block.header.chain_id != self.genesis.chain_id or block.height != height:
            raise _unverified(f"the node answered another block for height {height}")
        return block, certify(block, commit, self.validators_at(height))

    def block(self, height: int) -> tuple[Block, Certified]:
        """The block at `height`, decoded from its raw bytes, with its certificate checked
        against the validator set that governs that height."""
        if not self._followed:
            self.follow_changes()
        try:
            return self._certified_block(height)
        except GodownError as exc:
            known = len(self._changes)
            if exc.code is not Code.UNVERIFIED or self.follow_changes() == known:
                raise
            return self._certified_block(height)  # a change approved since the last look governs it

    def _certifying(self, height: int, root_of: str, want: bytes) -> Certified:
        """The certified header at height+1 whose `root_of` root is `want` (waiting for it
        on a quiet chain), or for the state, the header at `height` itself when that head
        is settled (its own header carries the state after it)."""
        if height > 0 and root_of == "state_root":
            block, cert = self.block(height)
            if head_settled(block.header, want):
                return cert
        deadline = time.monotonic() + self.wait_s
        while int(self.rpc.status()["height"]) <= height:
            if time.monotonic() > deadline:
                raise _unverified(f"no certified header for the state after height {height} yet; try again")
            time.sleep(0.1)
        _, cert = self.block(height + 1)
        if getattr(cert.header, root_of) != want:
            raise _unverified(f"the header at height {height + 1} certifies another {root_of}")
        return cert

    def state(self, key: bytes) -> tuple[dict[str, Any], Certified]:
        """A state entry (its raw value, or absent) proven against a certified state root."""
        answer = self.rpc.get(f"/v1/state/0x{key.hex()}")
        try:
            root = bytes.fromhex(answer["state_root"])
            value = None if answer["value_raw"] is None else bytes.fromhex(answer["value_raw"])
            proof = StateProof.from_json(answer["proof"])
            height = int(answer["height"])
        except (GodownError, KeyError, TypeError, ValueError) as exc:
            raise _unverified(f"the state answer is not well formed ({exc})") from None
        if not verify_proof(root, key, value, proof):
            raise _unverified("the Merkle proof does not lead from the value to the state root")
        return answer, self._certifying(height, "state_root", root)

    def tx(self, tx_id: str) -> tuple[dict[str, Any], Certified]:
        """A committed transaction: in a certified block at its index, and its result
        certified by the next header's `results_root`."""
        answer = self.rpc.get(f"/v1/txs/{tx_id}")
        if answer.get("status") != "committed":
            raise _unverified(f"transaction {tx_id} is not committed, so nothing certifies it")
        height, index = int(answer["height"]), int(answer["index"])
        block, _ = self.block(height)
        if not 0 <= index < len(block.txs) or block.txs[index].tx_id.hex() != tx_id:
            raise _unverified(f"block {height} does not hold transaction {tx_id} at index {index}")
        if answer.get("result") != block.results[index]:
            raise _unverified(f"the node reports result {answer.get('result')}, block {height} {block.results[index]}")
        return answer, self._certifying(height, "results_root", results_root(block.results))
