"""Wire format of consensus messages and write-ahead records: one canonical encoding,
strict decoding with the `malformed` code."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.messages import (
    Checkpoint,
    CommitVote,
    NewView,
    Prepare,
    PrePrepare,
    Proof,
    ViewChange,
    decode_message,
    encode_message,
)
from consensus.records import (
    ProofRecord,
    StableRecord,
    ViewChangeRecord,
    ViewRecord,
    VoteRecord,
    decode_record,
    encode_record,
)
from primitives import codec
from primitives.block import commit_vote_bytes
from primitives.errors import Code, GodownError

D = b"d" * 32
S = b"s" * 64
PROOF = Proof("prepare", 1, 3, D, b"payload", (("v0", S), ("v1", S), ("v2", S)))
VC = ViewChange(2, 0, b"", (), (PROOF,), "v1", S)
SAMPLES = [
    PrePrepare(0, 1, D, b"block", "v0", S),
    Prepare(0, 1, D, "v1", S),
    CommitVote(0, 1, D, "v2", S),
    Checkpoint(8, D, "v3", S),
    VC,
    NewView(2, (VC,), (PrePrepare(2, 3, D, b"payload", "v2", S),), "v2", S),
]


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(msg: object) -> None:
    data = encode_message(msg)  # type: ignore[arg-type]
    assert decode_message(data) == msg
    assert encode_message(decode_message(data)) == data


def test_commit_signs_exactly_the_certificate_bytes() -> None:
    vote = CommitVote(3, 7, D, "v1", S)
    assert vote.signed_bytes("chain") == commit_vote_bytes("chain", 7, 3, D)


def test_preprepare_and_prepare_sign_the_same_bytes() -> None:
    assert PrePrepare(1, 2, D, b"x", "v0", S).signed_bytes("c") == Prepare(1, 2, D, "v3", S).signed_bytes("c")


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "prepare", "view": 0, "height": 1, "digest": D, "sender": "v1"},  # missing sig
        {"type": "prepare", "view": 0, "height": 1, "digest": D, "sender": "v1", "sig": S, "extra": 1},
        {"type": "prepare", "view": -1, "height": 1, "digest": D, "sender": "v1", "sig": S},
        {"type": "prepare", "view": 0, "height": "1", "digest": D, "sender": "v1", "sig": S},
        {"type": "prepare", "view": 0, "height": 1, "digest": D, "sender": "", "sig": S},
        {"type": "prepare", "view": True, "height": 1, "digest": D, "sender": "v1", "sig": S},
        {"type": "nonsense"},
        {
            "type": "newview",
            "view": 1,
            "view_changes": [{"type": "prepare", "view": 0, "height": 1, "digest": D, "sender": "v1", "sig": S}],
            "pre_prepares": [],
            "sender": "v1",
            "sig": S,
        },
        {
            "type": "viewchange",
            "new_view": 1,
            "stable_height": 0,
            "stable_root": b"",
            "stable_votes": [],
            "proofs": [{"kind": "maybe", "view": 0, "height": 1, "digest": D, "payload": b"", "votes": []}],
            "sender": "v1",
            "sig": S,
        },
    ],
)
def test_strict_decoding_rejects_bad_documents(doc: dict[str, object]) -> None:
    with pytest.raises(GodownError) as err:
        decode_message(codec.encode(doc))
    assert err.value.code == Code.MALFORMED


def test_non_canonical_bytes_are_refused() -> None:
    data = bytearray(encode_message(Prepare(0, 1, D, "v1", S)))
    # view 0 is the positive fixint 0x00; re-encode it as uint8 0xcc 0x00 (non-minimal).
    i = data.index(b"\xa4view") + 5
    bad = bytes(data[:i]) + b"\xcc\x00" + bytes(data[i + 1 :])
    with pytest.raises(GodownError) as err:
        decode_message(bad)
    assert err.value.code == Code.MALFORMED


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_malformed(data: bytes) -> None:
    try:
        decode_message(data)
    except GodownError as exc:
        assert exc.code == Code.MALFORMED


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SAMPLES), st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_flipped_bytes_never_decode_to_something_else_silently(msg: object, pos: int, value: int) -> None:
    data = bytearray(encode_message(msg))  # type: ignore[arg-type]
    data[pos % len(data)] = value
    try:
        back = decode_message(bytes(data))
    except GodownError as exc:
        assert exc.code == Code.MALFORMED
    else:
        assert encode_message(back) == bytes(data)


@pytest.mark.parametrize(
    "rec",
    [
        VoteRecord("prepare", 1, 2, D),
        ProofRecord(PROOF),
        ViewChangeRecord(4),
        ViewRecord(4, 3),
        StableRecord(8, D, (("v0", S),)),
    ],
    ids=lambda r: type(r).__name__,
)
def test_record_round_trip(rec: object) -> None:
    assert decode_record(encode_record(rec)) == rec  # type: ignore[arg-type]


def test_damaged_record_is_store_damaged() -> None:
    with pytest.raises(GodownError) as err:
        decode_record(b"\xc1garbage")
    assert err.value.code == Code.STORE_DAMAGED
