"""Key files and sealed envelopes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from primitives.envelope import Envelope, open_envelope, seal
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair

A, B, C = (KeyPair.generate(n, "bank") for n in "abc")


def test_key_file_mode_and_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    A.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = KeyPair.load(path)
    assert again.sign_pub == A.sign_pub and again.enc_pub == A.enc_pub and again.id == A.id
    assert A.sign_seed.hex() not in repr(A) and A.enc_secret.hex() not in repr(A)


@pytest.mark.parametrize(
    "content", ["", "{}", "not json", '{"name":"x","role":"bank","sign_seed":"00","enc_secret":"00"}']
)
def test_damaged_key_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "k.json"
    path.write_text(content)
    with pytest.raises(GodownError) as err:
        KeyPair.load(path)
    assert err.value.code is Code.BAD_KEY_FILE


def test_seal_open_by_each_recipient() -> None:
    env = seal(b"readings", {A.id: A.enc_pub, B.id: B.enc_pub}, b"ad")
    env = Envelope.from_dict(env.to_dict())
    assert set(env.recipients) == {A.id, B.id}
    assert open_envelope(env, A.id, A.enc_secret, b"ad") == b"readings"
    assert open_envelope(env, B.id, B.enc_secret, b"ad") == b"readings"


def test_non_recipient_and_wrong_key() -> None:
    env = seal(b"readings", {A.id: A.enc_pub}, b"ad")
    with pytest.raises(GodownError) as err:
        open_envelope(env, C.id, C.enc_secret, b"ad")
    assert err.value.code is Code.NOT_RECIPIENT
    with pytest.raises(GodownError) as err:
        open_envelope(env, A.id, C.enc_secret, b"ad")
    assert err.value.code is Code.NOT_RECIPIENT


def test_tampering_is_detected() -> None:
    env = seal(b"readings", {A.id: A.enc_pub}, b"ad")
    with pytest.raises(GodownError) as err:
        open_envelope(env, A.id, A.enc_secret, b"other report")
    assert err.value.code is Code.TAMPERED
    flipped = bytearray(env.ciphertext)
    flipped[0] ^= 1
    with pytest.raises(GodownError) as err:
        open_envelope(Envelope(env.nonce, bytes(flipped), env.wrapped), A.id, A.enc_secret, b"ad")
    assert err.value.code is Code.TAMPERED


def test_envelope_shape_checks() -> None:
    env = seal(b"x", {A.id: A.enc_pub}, b"ad").to_dict()
    for bad in (
        {**env, "x": 1},
        {**env, "nonce": b"short"},
        {**env, "recipients": []},
        {**env, "recipients": [[A.id, b"k"], [A.id, b"k"]]},
    ):
        with pytest.raises(GodownError):
            Envelope.from_dict(bad)
