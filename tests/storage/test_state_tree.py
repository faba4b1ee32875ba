"""The authenticated state tree: roots against an independent reference, proofs
against an independent verifier, order independence, and both KV backends."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives import codec
from primitives.errors import GodownError
from primitives.state_proof import BUCKET, EMPTY, StateProof, verify_proof
from storage.kv import KV, Batch, LevelKV, MemoryKV
from storage.state_tree import StateTree

# ---- an independent reference, written from the spec in the module docstring -------------
# It works on hex strings of paths, recomputes the whole tree from the key set, and shares
# no code with storage.state_tree.


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


K = 8  # the bucket size the spec fixes


def ref_root(state: dict[bytes, bytes]) -> bytes:
    leaves = {h(k).hex(): h(v) for k, v in state.items()}

    def sub(prefix: str, paths: list[str]) -> bytes:
        if not paths:
            return b"\x00" * 32
        if len(paths) <= K:
            return h(b"\x00" + b"".join(bytes.fromhex(p) + leaves[p] for p in sorted(paths)))
        kids = [sub(prefix + d, [p for p in paths if p[len(prefix)] == d]) for d in "0123456789abcdef"]
        return h(b"\x01" + b"".join(kids))

    return sub("", sorted(leaves))


def ref_verify(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    path = h(key).hex()
    rows = proof.siblings
    if proof.bucket is None:
        if value is not None:
            return False
        node = b"\x00" * 32
    else:
        blob = proof.bucket
        entries = {blob[i : i + 32].hex(): blob[i + 32 : i + 64] for i in range(0, len(blob), 64)}
        if len(blob) % 64 or not all(p[: len(rows)] == path[: len(rows)] for p in entries):
            return False
        if path in entries:
            if value is None or h(value) != entries[path]:
                return False
        elif value is not None:
            return False
        node = h(b"\x00" + blob)
    for depth in reversed(range(len(rows))):
        slot = int(path[depth], 16)
        others = [rows[depth][i * 32 : (i + 1) * 32] for i in range(15)]
        kids = others[:slot] + [node] + others[slot:]
        node = h(b"\x01" + b"".join(kids))
    return node == root


# ---- helpers ---------------------------------------------------------------------------------


def apply(tree: StateTree, kv: KV, changes: dict[bytes, bytes | None]) -> bytes:
    batch = Batch()
    root = tree.apply(changes, batch)
    kv.write(batch, sync=False)
    return root


keys_st = st.binary(min_size=0, max_size=6)
state_st = st.dictionaries(keys_st, st.binary(max_size=8), max_size=40)


def test_empty_state() -> None:
    tree = StateTree(MemoryKV())
    assert tree.root == EMPTY == ref_root({})
    proof = tree.prove(b"anything")
    assert verify_proof(tree.root, b"anything", None, proof)
    assert ref_verify(tree.root, b"anything", None, proof)
    assert not verify_proof(tree.root, b"anything", b"", proof)


def test_small_state_root_is_one_bucket() -> None:
    kv = MemoryKV()
    tree = StateTree(kv)
    root = apply(tree, kv, {b"k": b"v"})
    assert root == h(b"\x00" + h(b"k") + h(b"v")) == ref_root({b"k": b"v"})
    root = apply(tree, kv, {b"j": b"w"})
    pairs = sorted([(h(b"k"), h(b"v")), (h(b"j"), h(b"w"))])
    assert root == h(b"\x00" + b"".join(p + v for p, v in pairs)) == ref_root({b"k": b"v", b"j": b"w"})
    assert BUCKET == K


@settings(max_examples=80, deadline=None)
@given(state=state_st, seed=st.integers(0, 2**32))
def test_root_matches_reference_and_ignores_order_and_batching(state: dict[bytes, bytes], seed: int) -> None:
    rng = random.Random(seed)
    items = list(state.items())
    roots = []
    for _ in range(3):
        rng.shuffle(items)
        kv = MemoryKV()
        tree = StateTree(kv)
        i = 0
        while i < len(items):
            n = rng.randint(1, 8)
            apply(tree, kv, dict(items[i : i + n]))
            i += n
        roots.append(tree.root)
    assert roots[0] == roots[1] == roots[2] == ref_root(state)


@settings(max_examples=80, deadline=None)
@given(before=state_st, changes=st.dictionaries(keys_st, st.one_of(st.none(), st.binary(max_size=8)), max_size=30))
def test_updates_and_deletes_match_reference(before: dict[bytes, bytes], changes: dict[bytes, bytes | None]) -> None:
    kv = MemoryKV()
    tree = StateTree(kv)
    apply(tree, kv, dict(before))
    after = dict(before)
    for k, v in changes.items():
        if v is None:
            after.pop(k, None)
        else:
            after[k] = v
    assert tree.compute_root(changes) == ref_root(after)
    assert tree.root == ref_root(before)  # compute_root changed nothing
    assert apply(tree, kv, changes) == ref_root(after)
    assert dict(tree.scan()) == after
    # and a fresh tree rebuilt from the index agrees
    assert StateTree(kv).root == tree.root


def test_delete_everything_returns_to_empty() -> None:
    kv = MemoryKV()
    tree = StateTree(kv)
    state = {bytes([i, j]): b"v" for i in range(20) for j in range(20)}
    apply(tree, kv, dict(state))
    for n, k in enumerate(list(state)[::2]):
        apply(tree, kv, {k: None})
        del state[k]
        if n % 40 == 0:
            assert tree.root == ref_root(state)
    assert tree.root == ref_root(state)
    apply(tree, kv, {k: None for k in state})
    assert tree.root == EMPTY


@settings(max_examples=60, deadline=None)
@given(
    state=st.dictionaries(keys_st, st.binary(max_size=8), min_size=1, max_size=60),
    probes=st.lists(keys_st, max_size=10),
)
def test_proofs_verify_with_both_verifiers(state: dict[bytes, bytes], probes: list[bytes]) -> None:
    kv = MemoryKV()
    tree = StateTree(kv)
    root = apply(tree, kv, dict(state))
    for key in list(state)[:10] + probes:
        value = state.get(key)
        proof = tree.prove(key)
        assert verify_proof(root, key, value, proof)
        assert ref_verify(root, key, value, proof)
        # a wrong claim never verifies
        wrong = b"x" + (value or b"") if value is not None else b"present?"
        assert not verify_proof(root, key, wrong, proof)
        assert not ref_verify(root, key, wrong, proof)
        if value is not None:
            assert not verify_proof(root, key, None, proof)  # inclusion is not exclusion


def build(n: int, seed: int = 7) -> tuple[StateTree, dict[bytes, bytes]]:
    rng = random.Random(seed)
    kv = MemoryKV()
    tree = StateTree(kv)
    state = {b"key/%d" % i: rng.randbytes(rng.randint(0, 30)) for i in range(n)}
    apply(tree, kv, dict(state))
    return tree, state


def test_tampered_proofs_roots_and_values_fail() -> None:
    tree, state = build(3000)
    root = tree.root
    key = b"key/17"
    proof = tree.prove(key)
    assert len(proof.siblings) >= 3
    assert verify_proof(root, key, state[key], proof)
    # altered root
    bad_root = bytes([root[0] ^ 1]) + root[1:]
    assert not verify_proof(bad_root, key, state[key], proof)
    # altered value
    assert not verify_proof(root, key, state[key] + b"\x00", proof)
    # every single-bit flip in any sibling row fails
    for d, row in enumerate(proof.siblings):
        for pos in (0, 31, 200, 479):
            flipped = row[:pos] + bytes([row[pos] ^ 0x80]) + row[pos + 1 :]
            sib = proof.siblings[:d] + (flipped,) + proof.siblings[d + 1 :]
            bad = StateProof(sib, proof.bucket)
            assert not verify_proof(root, key, state[key], bad)
            assert not ref_verify(root, key, state[key], bad)
    # dropping or adding a row fails
    assert not verify_proof(root, key, state[key], StateProof(proof.siblings[1:], proof.bucket))
    assert not verify_proof(root, key, state[key], StateProof(proof.siblings + (bytes(480),), proof.bucket))
    # any change to the bucket's bytes fails
    assert proof.bucket is not None
    for pos in range(0, len(proof.bucket), 17):
        blob = proof.bucket[:pos] + bytes([proof.bucket[pos] ^ 1]) + proof.bucket[pos + 1 :]
        assert not verify_proof(root, key, state[key], StateProof(proof.siblings, blob))
        assert not ref_verify(root, key, state[key], StateProof(proof.siblings, blob))
    # removing the key's entry from the bucket does not make an exclusion proof
    path = h(key)
    i = proof.bucket.find(path)
    assert i % 64 == 0
    without = proof.bucket[:i] + proof.bucket[i + 64 :]
    if without:
        assert not verify_proof(root, key, None, StateProof(proof.siblings, without))
    # another key's proof does not prove this key
    other = tree.prove(b"key/18")
    assert not verify_proof(root, key, state[key], other)
    # a proof that the key is absent cannot be forged by dropping the bucket
    assert not verify_proof(root, key, None, StateProof(proof.siblings, None))


def test_exclusion_proofs_of_both_kinds() -> None:
    tree, state = build(500)
    root = tree.root
    kinds = set()
    for i in range(400):
        key = b"absent/%d" % i
        proof = tree.prove(key)
        assert verify_proof(root, key, None, proof)
        assert ref_verify(root, key, None, proof)
        assert not verify_proof(root, key, b"", proof)
        kinds.add("empty slot" if proof.bucket is None else "bucket without it")
        if proof.bucket is not None:
            # the same proof proves each neighbour in the bucket present, not absent
            neighbours = [k for k in state if proof.bucket.find(h(k)) % 64 == 0 and h(k) in proof.bucket]
            assert neighbours
            for n in neighbours:
                assert not verify_proof(root, n, None, proof)
                assert verify_proof(root, n, state[n], proof)
    assert kinds == {"empty slot", "bucket without it"}


def test_proof_encodings_round_trip() -> None:
    tree, state = build(200)
    for key in (b"key/3", b"nope"):
        proof = tree.prove(key)
        again = StateProof.from_dict(codec.decode(codec.encode(proof.to_dict())))
        assert again == proof
        via_json = StateProof.from_json(json.loads(json.dumps(proof.to_json())))
        assert via_json == proof
        assert verify_proof(tree.root, key, state.get(key), via_json)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {},
        {"siblings": []},
        {"siblings": [b"short"], "bucket": None},
        {"siblings": [], "bucket": b""},
        {"siblings": [], "bucket": b"x" * 63},
        {"siblings": [], "bucket": b"x" * 64 * 9},
        {"siblings": [bytes(480)] * 65, "bucket": None},
        {"siblings": [], "bucket": None, "extra": 1},
    ],
)
def test_malformed_proofs_are_refused(doc: object) -> None:
    with pytest.raises(GodownError):
        StateProof.from_dict(doc)


def test_malformed_proof_json_is_refused() -> None:
    with pytest.raises(GodownError):
        StateProof.from_json({"siblings": ["zz"], "bucket": None})


def test_scan_is_ordered_and_prefix_bounded(kv: KV) -> None:
    tree = StateTree(kv)
    apply(tree, kv, {b"lot/2": b"b", b"lot/10": b"c", b"lot/1": b"a", b"lots": b"x", b"case/1": b"y"})
    assert list(tree.scan(b"lot/")) == [(b"lot/1", b"a"), (b"lot/10", b"c"), (b"lot/2", b"b")]
    assert tree.get(b"lots") == b"x"
    assert tree.get(b"nope") is None


def test_memory_and_leveldb_give_identical_roots(tmp_path: Path) -> None:
    rng = random.Random(3)
    mem, lvl = MemoryKV(), LevelKV(tmp_path / "db")
    try:
        trees = [StateTree(mem), StateTree(lvl)]
        for _ in range(20):
            changes: dict[bytes, bytes | None] = {}
            for _ in range(50):
                k = b"k%d" % rng.randrange(400)
                changes[k] = None if rng.random() < 0.2 else rng.randbytes(8)
            roots = [apply(t, kv, changes) for t, kv in zip(trees, (mem, lvl))]
            assert roots[0] == roots[1]
        assert dict(trees[0].scan()) == dict(trees[1].scan())
        root = trees[1].root
        lvl.close()
        lvl = LevelKV(tmp_path / "db")
        assert StateTree(lvl).root == root == ref_root(dict(trees[0].scan()))
    finally:
        lvl.close()


def test_prepare_then_adopt(kv_factory: Callable[[], KV]) -> None:
    kv = kv_factory()
    tree = StateTree(kv)
    apply(tree, kv, {b"a": b"1"})
    before = tree.root
    batch = Batch()
    prepared = tree.prepare({b"b": b"2", b"a": None}, batch)
    assert tree.root == before and tree.get(b"b") is None
    kv.write(batch)
    tree.adopt(prepared)
    assert tree.root == prepared.root == ref_root({b"b": b"2"})


def test_non_bytes_changes_are_refused() -> None:
    tree = StateTree(MemoryKV())
    with pytest.raises(TypeError):
        tree.compute_root({"k": b"v"})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        tree.compute_root({b"k": "v"})  # type: ignore[dict-item]


def test_a_computed_root_is_reused_only_for_equal_changes_on_the_same_tree() -> None:
    """compute_root remembers its tree for the commit that follows; any other changes,
    the same dict edited since, or a tree that moved on must be computed afresh."""
    kv = MemoryKV()
    tree = StateTree(kv)
    apply(tree, kv, {b"a": b"1", b"b": b"2"})
    changes: dict[bytes, bytes | None] = {b"c": b"3"}
    assert tree.compute_root(changes) == ref_root({b"a": b"1", b"b": b"2", b"c": b"3"})
    changes[b"a"] = None  # edited after the root was computed
    batch = Batch()
    prepared = tree.prepare(changes, batch)
    assert prepared.root == ref_root({b"b": b"2", b"c": b"3"})
    assert batch.ops == {b"s/c": b"3", b"s/a": None}
    assert tree.compute_root({b"d": b"4"}) == ref_root({b"a": b"1", b"b": b"2", b"d": b"4"})
    assert apply(tree, kv, {b"e": b"5"}) == ref_root({b"a": b"1", b"b": b"2", b"e": b"5"})
    # the remembered tree was for the state before {e}: not reused after it
    assert apply(tree, kv, {b"d": b"4"}) == ref_root({b"a": b"1", b"b": b"2", b"d": b"4", b"e": b"5"})
    assert StateTree(kv).root == tree.root
