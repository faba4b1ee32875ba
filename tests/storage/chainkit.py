"""Helpers for the chain store tests: real signed transactions, linked blocks, certificates."""

from __future__ import annotations

from collections.abc import Sequence

from primitives.block import Block, Commit, Header, commit_vote_bytes, txs_root
from primitives.keys import KeyPair
from primitives.tx import SignedTx, Tx
from storage.chain import ChainStore

CHAIN = "test-chain"
SENDER = KeyPair.generate("alice", "bank")
VALIDATOR = KeyPair.generate("v1", "bank")


def signed_tx(nonce: int, note: str = "") -> SignedTx:
    return Tx(CHAIN, "demo.note", SENDER.id, nonce, {"note": note}).sign(SENDER)


def next_block(store: ChainStore, txs: Sequence[SignedTx], results: Sequence[str] | None = None) -> Block:
    h = store.head_height + 1
    state_root = store.state_root_at(h - 1)
    results_root = store.results_root_at(h - 1)
    assert state_root is not None and results_root is not None
    header = Header(
        chain_id=CHAIN,
        height=h,
        prev_hash=store.head_hash,
        time_ms=1_700_000_000_000 + h,
        view=0,
        proposer=VALIDATOR.id,
        txs_root=txs_root(txs),
        state_root=state_root,
        results_root=results_root,
    )
    return Block(header, tuple(txs), tuple(results if results is not None else ["ok"] * len(txs)))


def certify(block: Block) -> Commit:
    msg = commit_vote_bytes(CHAIN, block.height, 0, block.hash())
    return Commit(CHAIN, block.height, 0, block.hash(), ((VALIDATOR.id, VALIDATOR.sign(msg)),))


def grow(store: ChainStore, blocks: int, txs_per_block: int = 3, start_nonce: int = 0) -> None:
    """Commit `blocks` blocks, each writing one state key per transaction."""
    nonce = start_nonce
    for _ in range(blocks):
        txs = [signed_tx(nonce + i) for i in range(txs_per_block)]
        nonce += txs_per_block
        block = next_block(store, txs)
        changes: dict[bytes, bytes | None] = {b"note/%d" % tx.tx.nonce: tx.tx_id for tx in txs}
        store.commit_block(block, certify(block), changes)
