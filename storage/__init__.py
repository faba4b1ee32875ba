"""Storage: a small KV interface (LevelDB via plyvel, and an in-memory twin), the
authenticated state tree with proofs, and the chain store built on them."""

from primitives.state_proof import EMPTY, StateProof, verify_proof
from storage.chain import ChainStore, ProvenEntry, Roots, StateView, TxLocation
from storage.kv import KV, Batch, LevelKV, MemoryKV, WriteFailed
from storage.state_tree import StateTree

__all__ = [
    "EMPTY",
    "KV",
    "Batch",
    "ChainStore",
    "LevelKV",
    "MemoryKV",
    "ProvenEntry",
    "Roots",
    "StateProof",
    "StateTree",
    "StateView",
    "TxLocation",
    "WriteFailed",
    "verify_proof",
]
