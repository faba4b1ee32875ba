"""Signed transactions and blocks: every mutation of signed bytes is detected."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from primitives import codec
from primitives.block import Block, Commit, Header, commit_vote_bytes, quorum_size, txs_root
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair, id_from_public_key
from primitives.tx import SignedTx, Tx

KEY = KeyPair.generate("bank", "bank")
OTHER = KeyPair.generate("other", "bank")


def make_tx(nonce: int = 0, body: dict[str, object] | None = None) -> SignedTx:
    return Tx("godown-test", "rating.issue", KEY.id, nonce, body or {"subject": "x", "grade": "A"}).sign(KEY)


def test_signed_round_trip_and_verify() -> None:
    stx = make_tx()
    again = SignedTx.decode(stx.encode())
    assert again == stx and again.tx_id == stx.tx_id
    assert again.verify(KEY.sign_pub)
    assert not again.verify(OTHER.sign_pub)


@settings(max_examples=300)
@given(st.data())
def test_every_byte_flip_is_detected(data: st.DataObject) -> None:
    stx = make_tx(body={"subject": "lot-1", "grade": "BBB", "n": 5})
    raw = bytearray(stx.encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[pos] ^= 1 << bit
    try:
        again = SignedTx.decode(bytes(raw))
    except GodownError:
        return  # refused at decoding: detected
    assert not again.verify(KEY.sign_pub) or again.tx_bytes == stx.tx_bytes and again.sig == stx.sig


def test_unknown_and_missing_fields_refused() -> None:
    doc = make_tx().tx.to_dict()
    for bad in (
        {**doc, "extra": 1},
        {k: v for k, v in doc.items() if k != "nonce"},
        {**doc, "nonce": -1},
        {**doc, "nonce": True},
        {**doc, "body": []},
    ):
        raw = codec.encode(bad)
        with pytest.raises(GodownError) as err:
            SignedTx.from_dict({"tx": raw, "sig": bytes(64)})
        assert err.value.code is Code.MALFORMED


def test_short_signature_and_oversize() -> None:
    with pytest.raises(GodownError) as err:
        SignedTx.from_dict({"tx": make_tx().tx_bytes, "sig": b"x"})
    assert err.value.code is Code.BAD_SIGNATURE
    big = Tx("c", "t", "s", 0, {"blob": b"x" * 70_000}).encode()
    with pytest.raises(GodownError) as err:
        SignedTx.from_dict({"tx": big, "sig": bytes(64)})
    assert err.value.code is Code.OVERSIZE


def _block(n: int = 3) -> Block:
    txs = tuple(make_tx(i) for i in range(n))
    header = Header("godown-test", 1, bytes(32), 1000, 0, KEY.id, txs_root(txs), bytes(32), bytes(32))
    return Block(header, txs, tuple("ok" for _ in txs))


def test_block_round_trip_and_roots() -> None:
    block = _block()
    again = Block.decode(block.encode())
    assert again == block and again.hash() == block.hash()
    again.check_txs_root()
    swapped = Block(block.header, (block.txs[1], block.txs[0], block.txs[2]))
    with pytest.raises(GodownError):
        swapped.check_txs_root()


def test_block_parts_are_what_decoding_sees_without_the_transactions_decoded() -> None:
    b = _block()
    header, encoded, results = Block.parts_of(codec.decode(b.encode()))
    assert header == b.header and results == b.results
    assert encoded == [t.encode() for t in b.txs]
    doc = b.to_dict()
    doc["txs"] = [*doc["txs"][:-1], "not bytes"]
    for bad in (doc, {**b.to_dict(), "extra": 1}, {**b.to_dict(), "results": [1]}):
        with pytest.raises(GodownError):
            Block.parts_of(bad)
        with pytest.raises(GodownError):
            Block.from_dict(bad)


def test_commit_certificate_needs_a_quorum_of_real_validators() -> None:
    vals = [KeyPair.generate(f"v{i}", "bank") for i in range(4)]
    validators = {v.id: v.sign_pub for v in vals}
    block = _block()
    h = block.header
    msg = commit_vote_bytes(h.chain_id, h.height, 0, block.hash())
    votes = tuple(sorted((v.id, v.sign(msg)) for v in vals[:3]))
    Commit(h.chain_id, h.height, 0, block.hash(), votes).verify(validators, h)
    again = Commit.decode(Commit(h.chain_id, h.height, 0, block.hash(), votes).encode())
    again.verify(validators, h)
    for bad_votes in (
        votes[:2],
        votes[:2] + ((votes[0][0], votes[0][1]),),
        votes[:2] + ((OTHER.id, OTHER.sign(msg)),),
        votes[:2] + ((vals[3].id, vals[3].sign(msg + b"x")),),
    ):
        with pytest.raises(GodownError) as err:
            Commit(h.chain_id, h.height, 0, block.hash(), bad_votes).verify(validators, h)
        assert err.value.code is Code.BAD_CERTIFICATE
    assert [quorum_size(n) for n in (1, 4, 5, 7, 31)] == [1, 3, 4, 5, 21]


def test_ids_derive_from_signing_key() -> None:
    assert KEY.id == id_from_public_key(KEY.sign_pub) and len(KEY.id) == 40


def test_check_successor_refuses_every_broken_link() -> None:
    import dataclasses

    from primitives.block import Head, check_successor

    block = _block()
    h = block.header
    head = Head(h.chain_id, h.height - 1, h.prev_hash, h.time_ms - 1, h.state_root, h.results_root, False)
    check_successor(block, head, 1000)
    broken = [
        dataclasses.replace(head, chain_id="other"),
        dataclasses.replace(head, height=head.height + 1),
        dataclasses.replace(head, hash=b"\x01" * 32),
        dataclasses.replace(head, state_root=b"\x02" * 32),
        dataclasses.replace(head, results_root=b"\x03" * 32),
        dataclasses.replace(head, time_ms=h.time_ms),
    ]
    for bad in broken:
        with pytest.raises(GodownError) as err:
            check_successor(block, bad, 1000)
        assert err.value.code is Code.BAD_BLOCK
    with pytest.raises(GodownError):
        check_successor(Block(h, block.txs[:2]), head, 1000)  # txs no longer match txs_root


def test_an_empty_block_only_certifies_an_unsettled_head_after_the_quiet_interval() -> None:
    import dataclasses

    from primitives.block import Head, check_successor, head_settled

    h = _block().header
    empty = Block(dataclasses.replace(h, txs_root=txs_root(())), ())
    quiet = Head(h.chain_id, h.height - 1, h.prev_hash, h.time_ms - 1000, h.state_root, h.results_root, False)
    check_successor(empty, quiet, 1000)  # unsettled head, quiet for exactly the interval
    refused = [
        (dataclasses.replace(quiet, settled=True), 1000),  # nothing left to certify
        (dataclasses.replace(quiet, time_ms=h.time_ms - 999), 1000),  # before the quiet interval
        (quiet, 0),  # empty blocks switched off in genesis
    ]
    for head, after_ms in refused:
        with pytest.raises(GodownError) as err:
            check_successor(empty, head, after_ms)
        assert err.value.code is Code.BAD_BLOCK
    # settled: genesis, or an empty head that left the state as its header says
    assert head_settled(None, b"\x05" * 32)
    assert head_settled(empty.header, empty.header.state_root)
    assert not head_settled(empty.header, b"\x05" * 32)  # its time hook changed the state
    assert not head_settled(h, h.state_root)  # transactions: their results need certifying


def test_a_remembered_decoding_is_reused_for_its_wire_bytes() -> None:
    stx = make_tx(nonce=987_654)
    fresh = SignedTx.from_dict(stx.to_dict())  # as a client's JSON or msgpack batch is read
    assert SignedTx.decode(stx.encode()) is not fresh
    again = SignedTx.from_dict({"tx": stx.tx_bytes, "sig": stx.sig})
    assert again.remember() is again
    assert SignedTx.decode(bytes(stx.encode())) is again  # a proposal's copy of the bytes
    assert Block.decode(Block(_block(0).header, (stx,)).encode()).txs[0] is again


@settings(max_examples=50)
@given(nonce=st.integers(0, 2**40), grade=st.text(min_size=1, max_size=8))
def test_a_stored_decoding_is_the_strict_one(nonce: int, grade: str) -> None:
    stx = make_tx(nonce=nonce, body={"subject": "x", "grade": grade})
    light = SignedTx.decode_stored(stx.encode())
    assert light == SignedTx.decode(stx.encode()) and light.tx_id == stx.tx_id and light.encode() == stx.encode()
    for bad in (b"", b"\xc1", codec.encode({"tx": b"\xc1", "sig": stx.sig}), codec.encode([1, 2])):
        with pytest.raises(GodownError) as exc:
            SignedTx.decode_stored(bad)
        assert exc.value.code is Code.MALFORMED
