"""`Replica.authentic_proposal`: what the node checks before it holds, decodes or verifies a
PRE-PREPARE (the guard against a validator that floods proposals for far heights)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.messages import PrePrepare, prepare_vote_bytes
from consensus.signing import FakeSigner
from primitives.hashing import sha256
from tests.consensus.harness import IDS, replica

CHAIN = "test"


def pp(view: int, h: int, sender: str, payload: bytes = b"block", sig_by: str | None = None) -> PrePrepare:
    d = sha256(payload)
    return PrePrepare(
        view, h, d, payload, sender, FakeSigner(sig_by or sender).sign(prepare_vote_bytes(CHAIN, view, h, d))
    )


def test_only_the_primary_of_its_view_inside_the_window_signed_and_matching() -> None:
    r = replica("v1")
    span = r.config.high_span
    assert r.authentic_proposal(pp(0, 1, "v0"))
    assert r.authentic_proposal(pp(0, span, "v0"))  # ahead of the chain, inside the window
    assert r.authentic_proposal(pp(1, 5, "v1")) is False  # ourselves
    assert r.authentic_proposal(pp(1, 5, "v2")) is False  # not the primary of view 1 (v1 is)
    assert r.authentic_proposal(pp(0, 5, "v2")) is False  # not the primary of view 0
    assert r.authentic_proposal(pp(0, span + 1, "v0")) is False  # beyond the high watermark
    assert r.authentic_proposal(pp(0, 1_000_000, "v0")) is False
    assert r.authentic_proposal(pp(0, 1, "v0", sig_by="v2")) is False  # forged signature
    bad_digest = pp(0, 1, "v0")
    assert r.authentic_proposal(PrePrepare(0, 1, sha256(b"other"), bad_digest.payload, "v0", bad_digest.sig)) is False
    assert r.authentic_proposal(pp(4, 1, "v0"))  # view 4 (primary v0 again) is at most n ahead
    assert r.authentic_proposal(pp(8, 1, "v0")) is False  # more than n views ahead


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 12), st.integers(0, 400), st.sampled_from(IDS), st.booleans())
def test_nothing_unauthentic_passes(view: int, h: int, sender: str, forged: bool) -> None:
    r = replica("v3")
    m = pp(view, h, sender, sig_by="v2" if forged and sender != "v2" else None)
    ok = r.authentic_proposal(m)
    if ok:
        assert sender == IDS[view % 4] and sender != "v3"
        assert 0 < h <= r.config.high_span and view <= 4
        assert not (forged and sender != "v2")
