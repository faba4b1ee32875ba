"""The genesis document: chain id, members with roles and keys, validators, policy.

It is JSON on disk (people read and edit it) and canonical msgpack when hashed;
its hash is the `prev_hash` of block 1, so every block chains back to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from primitives import codec
from primitives.errors import Code, GodownError
from primitives.hashing import sha256
from primitives.keys import ROLES

GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C", "D")
"""Rating grades, best first."""


def _bad(message: str) -> GodownError:
    return GodownError(Code.BAD_CONFIG, f"genesis: {message}")


@dataclass(frozen=True)
class Member:
    id: str
    name: str
    role: str
    sign_pub: bytes
    enc_pub: bytes

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "sign_pub": self.sign_pub.hex(),
            "enc_pub": self.enc_pub.hex(),
        }


@dataclass(frozen=True)
class Policy:
    """Financing rules every node applies the same way."""

    min_grade: str = "BBB"
    extension_consents: tuple[str, ...] = ("insurer", "guarantor")
    heartbeat_interval_ms: int = 60_000
    max_extension_ms: int = 90 * 24 * 3600 * 1000

    def to_json(self) -> dict[str, Any]:
        return {
            "min_grade": self.min_grade,
            "extension_consents": list(self.extension_consents),
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_extension_ms": self.max_extension_ms,
        }


@dataclass(frozen=True)
class ConsensusParams:
    """Block cutting and PBFT timing; timeouts are in milliseconds here and turned
    into ticks by the node (`tick_ms`)."""

    max_block_txs: int = 1000
    batch_timeout_ms: int = 20
    checkpoint_interval: int = 4
    window: int = 8
    tick_ms: int = 10
    view_change_timeout_ms: int = 2000
    max_clock_drift_ms: int = 5000

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    members: tuple[Member, ...]
    validators: tuple[str, ...]
    policy: Policy = field(default_factory=Policy)
    consensus: ConsensusParams = field(default_factory=ConsensusParams)

    def member(self, member_id: str) -> Member | None:
        for m in self.members:
            if m.id == member_id:
                return m
        return None

    def validator_keys(self) -> dict[str, bytes]:
        """Validator id → signing public key, in validator order."""
        by_id = {m.id: m.sign_pub for m in self.members}
        return {v: by_id[v] for v in self.validators}

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "members": [m.to_json() for m in self.members],
            "validators": list(self.validators),
            "policy": self.policy.to_json(),
            "consensus": self.consensus.to_json(),
        }

    def hash(self) -> bytes:
        """prev_hash of block 1."""
        return sha256(codec.encode(self.to_json()))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: str | Path) -> Genesis:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _bad(f"{path} not found") from None
        except (OSError, ValueError) as exc:
            raise _bad(f"{path} is not JSON ({exc.__class__.__name__})") from None
        return Genesis.from_json(doc)

    @staticmethod
    def from_json(doc: Any) -> Genesis:
        try:
            members = []
            for m in doc["members"]:
                if m["role"] not in ROLES:
                    raise _bad(f"member {m['id']} has unknown role {m['role']!r}")
                members.append(
                    Member(
                        str(m["id"]),
                        str(m["name"]),
                        m["role"],
                        bytes.fromhex(m["sign_pub"]),
                        bytes.fromhex(m["enc_pub"]),
                    )
                )
            ids = [m.id for m in members]
            if len(set(ids)) != len(ids):
                raise _bad("duplicate member id")
            validators = tuple(str(v) for v in doc["validators"])
            if not validators or any(v not in ids for v in validators) or len(set(validators)) != len(validators):
                raise _bad("validators must be distinct member ids")
            p = doc.get("policy", {})
            policy = Policy(
                min_grade=p.get("min_grade", Policy.min_grade),
                extension_consents=tuple(p.get("extension_consents", Policy.extension_consents)),
                heartbeat_interval_ms=int(p.get("heartbeat_interval_ms", Policy.heartbeat_interval_ms)),
                max_extension_ms=int(p.get("max_extension_ms", Policy.max_extension_ms)),
            )
            if policy.min_grade not in GRADES:
                raise _bad(f"min_grade must be one of {GRADES}")
            c = doc.get("consensus", {})
            known = set(ConsensusParams.__dataclass_fields__)
            if set(c) - known:
                raise _bad(f"unknown consensus parameters {sorted(set(c) - known)}")
            consensus = ConsensusParams(**{k: int(v) for k, v in c.items()})
            return Genesis(
                str(doc["chain_id"]), int(doc["genesis_time_ms"]), tuple(members), validators, policy, consensus
            )
        except GodownError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad(f"missing or malformed field ({exc.__class__.__name__}: {exc})") from None
