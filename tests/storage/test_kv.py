"""One conformance suite for every KV backend (MemoryKV and LevelKV)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from primitives.errors import Code, GodownError
from storage.kv import KV, Batch, LevelKV, MemoryKV, prefix_upper_bound


def _write(kv: KV, model: dict[bytes, bytes], ops: list[tuple[bytes, bytes | None]]) -> None:
    """One batch of puts and deletes (None) to `kv`, and the same to the dict it is checked against."""
    b = Batch()
    for k, v in ops:
        if v is None:
            b.delete(k)
            model.pop(k, None)
        else:
            b.put(k, v)
            model[k] = v
    kv.write(b, sync=False)


def put_all(kv: KV, items: dict[bytes, bytes]) -> None:
    b = Batch()
    for k, v in items.items():
        b.put(k, v)
    kv.write(b)


def test_get_missing_is_none(kv: KV) -> None:
    assert kv.get(b"nope") is None


def test_put_get_overwrite_delete(kv: KV) -> None:
    kv.put(b"a", b"1")
    assert kv.get(b"a") == b"1"
    kv.put(b"a", b"2")
    assert kv.get(b"a") == b"2"
    kv.delete(b"a")
    assert kv.get(b"a") is None
    kv.delete(b"a")  # deleting a missing key is fine
    kv.put(b"a", b"")  # empty values are values
    assert kv.get(b"a") == b""


def test_batch_last_op_wins_and_is_atomic_in_effect(kv: KV) -> None:
    b = Batch()
    b.put(b"k", b"1")
    b.delete(b"k")
    b.put(b"j", b"x")
    b.delete(b"j")
    b.put(b"j", b"y")
    assert kv.get(b"j") is None  # nothing visible before write
    kv.write(b, sync=False)
    assert kv.get(b"k") is None
    assert kv.get(b"j") == b"y"


def test_iterate_prefix_in_order(kv: KV) -> None:
    put_all(kv, {b"b/2": b"2", b"a/1": b"x", b"b/1": b"1", b"b/10": b"10", b"c": b"c", b"b": b"bare"})
    assert [k for k, _ in kv.iterate(b"b/")] == [b"b/1", b"b/10", b"b/2"]
    assert [k for k, _ in kv.iterate(b"b/", reverse=True)] == [b"b/2", b"b/10", b"b/1"]
    assert [k for k, _ in kv.iterate(b"")] == [b"a/1", b"b", b"b/1", b"b/10", b"b/2", b"c"]
    assert list(kv.iterate(b"zz")) == []
    assert dict(kv.iterate(b"b/")) == {b"b/1": b"1", b"b/10": b"10", b"b/2": b"2"}


def test_iterate_start(kv: KV) -> None:
    put_all(kv, {b"p" + bytes([i]): bytes([i]) for i in range(10)})
    put_all(kv, {b"o": b"", b"q": b""})
    assert [k[1] for k, _ in kv.iterate(b"p", start=b"p\x05")] == [5, 6, 7, 8, 9]
    assert [k[1] for k, _ in kv.iterate(b"p", start=b"p\x05", reverse=True)] == [5, 4, 3, 2, 1, 0]
    assert [k[1] for k, _ in kv.iterate(b"p", start=b"p\x05\x00")] == [6, 7, 8, 9]
    assert [k[1] for k, _ in kv.iterate(b"p", start=b"p\x05\x00", reverse=True)] == [5, 4, 3, 2, 1, 0]
    assert len(list(kv.iterate(b"p", start=b"a"))) == 10
    assert list(kv.iterate(b"p", start=b"a", reverse=True)) == []
    assert list(kv.iterate(b"p", start=b"z")) == []
    assert len(list(kv.iterate(b"p", start=b"z", reverse=True))) == 10


def test_prefix_of_ff_bytes(kv: KV) -> None:
    put_all(kv, {b"\xff\xff": b"1", b"\xff\xff\x00": b"2", b"\xff": b"3", b"\x00": b"4"})
    assert [k for k, _ in kv.iterate(b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\x00"]
    assert prefix_upper_bound(b"\xff") is None
    assert prefix_upper_bound(b"a\xff") == b"b"


def test_delete_then_reinsert_keeps_single_entry(kv: KV) -> None:
    put_all(kv, {b"x1": b"a", b"x2": b"b"})
    list(kv.iterate(b"x"))
    kv.delete(b"x1")
    kv.put(b"x3", b"c")
    kv.delete(b"x3")
    kv.put(b"x3", b"d")
    kv.put(b"x1", b"e")
    assert list(kv.iterate(b"x")) == [(b"x1", b"e"), (b"x2", b"b"), (b"x3", b"d")]


def test_batch_rejects_non_bytes() -> None:
    b = Batch()
    with pytest.raises(TypeError):
        b.put("k", b"v")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        b.put(b"k", "v")  # type: ignore[arg-type]


def test_closed_store_refuses(kv: KV) -> None:
    kv.close()
    kv.close()
    with pytest.raises(GodownError):
        kv.get(b"a")


ops = st.lists(
    st.tuples(st.binary(min_size=0, max_size=3), st.one_of(st.none(), st.binary(max_size=4))),
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(ops, max_size=5),
    prefix=st.binary(max_size=2),
    reverse=st.booleans(),
    start=st.one_of(st.none(), st.binary(max_size=3)),
)
def test_matches_a_dict_model(
    kv: KV, batches: list[list[tuple[bytes, bytes | None]]], prefix: bytes, reverse: bool, start: bytes | None
) -> None:
    for k, _ in list(kv.iterate(b"")):
        kv.delete(k)
    model: dict[bytes, bytes] = {}
    for ops_ in batches:
        _write(kv, model, ops_)
        want = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        if start is not None:
            want = [(k, v) for k, v in want if (k <= start if reverse else k >= start)]
        if reverse:
            want.reverse()
        assert list(kv.iterate(prefix, start=start, reverse=reverse)) == want
        assert all(kv.get(k) == v for k, v in model.items())


def test_leveldb_survives_reopen(tmp_path: Path) -> None:
    kv = LevelKV(tmp_path / "db")
    kv.put(b"a", b"1")
    kv.close()
    kv2 = LevelKV(tmp_path / "db")
    assert kv2.get(b"a") == b"1"
    kv2.close()


def test_leveldb_locked_dir_is_a_clear_error(tmp_path: Path) -> None:
    kv = LevelKV(tmp_path / "db")
    try:
        with pytest.raises(GodownError) as err:
            LevelKV(tmp_path / "db")
        assert err.value.code == Code.BAD_CONFIG
        assert "in use" in err.value.message
    finally:
        kv.close()


def test_leveldb_corrupt_dir_is_a_clear_error(tmp_path: Path) -> None:
    kv = LevelKV(tmp_path / "db")
    for i in range(100):
        kv.put(b"k%d" % i, b"v" * 100)
    kv.close()
    for f in (tmp_path / "db").iterdir():
        if f.name.startswith("MANIFEST") or f.name == "CURRENT":
            f.write_bytes(b"garbage" * 10)
    with pytest.raises(GodownError) as err:
        LevelKV(tmp_path / "db")
    assert err.value.code in (Code.STORE_DAMAGED, Code.BAD_CONFIG)
    assert str(tmp_path / "db") in err.value.message


def test_memory_twin_is_independent() -> None:
    a, b = MemoryKV(), MemoryKV()
    a.put(b"k", b"v")
    assert b.get(b"k") is None


@settings(max_examples=80, deadline=None)
@given(
    batches=st.lists(ops, min_size=1, max_size=12),
    probes=st.lists(st.tuples(st.binary(max_size=2), st.booleans(), st.one_of(st.none(), st.binary(max_size=3)))),
    merge_every=st.integers(min_value=0, max_value=8),
)
def test_memory_kv_lazy_merge_matches_a_dict_model(
    batches: list[list[tuple[bytes, bytes | None]]],
    probes: list[tuple[bytes, bool, bytes | None]],
    merge_every: int,
) -> None:
    """MemoryKV keeps recent keys in a side list and removed ones in its main list until
    a merge: scans must agree with a plain dict before, across and after merges."""
    kv = MemoryKV()
    kv.MERGE_EVERY = merge_every  # type: ignore[misc]  # a small threshold: merges happen mid-run
    model: dict[bytes, bytes] = {}
    for ops_ in batches:
        _write(kv, model, ops_)
        for prefix, reverse, start in [(b"", False, None), *probes]:
            want = sorted((k, v) for k, v in model.items() if k.startswith(prefix))
            if start is not None:
                want = [(k, v) for k, v in want if (k <= start if reverse else k >= start)]
            if reverse:
                want.reverse()
            assert list(kv.iterate(prefix, start=start, reverse=reverse)) == want
