"""The genesis document: chain id, members with roles and keys, validators, policy.

It is JSON on disk (people read and edit it) and canonical msgpack when hashed;
its hash is the `prev_hash` of block 1, so every block chains back to it.

A validator is a node, not a member: its own key (libp2p identity, consensus
votes) and advertised address, and the member that runs it (DESIGN §2). A member
may run no node at all. The genesis ceremony (`godown genesis new|add|verify`)
builds this file from signed member cards; a draft (before the first validator
is added) loads only with `draft=True`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from primitives import codec
from primitives.errors import Code, GodownError
from primitives.hashing import sha256
from primitives.keys import ROLES, id_from_public_key

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


ADDRESS = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/[^/\s]+/tcp/[0-9]{1,5}(/p2p/[1-9A-HJ-NP-Za-km-z]+)?$")
"""An advertised p2p address: a TCP multiaddr, optionally with the node's /p2p/ id."""


@dataclass(frozen=True)
class Validator:
    """A validating node: its id (derived from its key), the member running it, its
    Ed25519 public key and the p2p address it advertises."""

    node_id: str
    member: str
    node_pub: bytes
    p2p_addr: str

    def to_json(self) -> dict[str, str]:
        return {
            "node_id": self.node_id,
            "member": self.member,
            "node_pub": self.node_pub.hex(),
            "p2p_addr": self.p2p_addr,
        }

    @staticmethod
    def from_json(doc: Any) -> Validator:
        v = Validator(str(doc["node_id"]), str(doc["member"]), bytes.fromhex(doc["node_pub"]), str(doc["p2p_addr"]))
        if len(v.node_pub) != 32 or v.node_id != id_from_public_key(v.node_pub):
            raise _bad(f"validator {v.node_id}: node_id must be derived from a 32-byte node_pub")
        if not ADDRESS.match(v.p2p_addr):
            raise _bad(f"validator {v.node_id}: p2p_addr {v.p2p_addr!r} is not a /ip4|ip6|dns…/tcp/PORT multiaddr")
        return v


GOVERNANCE_ROLES = ("warehouse", "bank", "insurer", "guarantor")


@dataclass(frozen=True)
class Policy:
    """Financing rules every node applies the same way."""

    min_grade: str = "BBB"
    extension_consents: tuple[str, ...] = ("insurer", "guarantor")
    heartbeat_interval_ms: int = 60_000
    max_extension_ms: int = 90 * 24 * 3600 * 1000
    gov_roles: tuple[str, ...] = GOVERNANCE_ROLES
    """Roles whose members may propose and vote on governance actions."""
    gov_approval_pct: int = 67
    """Share of those members (percent, rounded up) whose approval runs an action;
    validator-set changes need 2f+1 of the current validators' members besides."""

    def to_json(self) -> dict[str, Any]:
        return {
            "min_grade": self.min_grade,
            "extension_consents": list(self.extension_consents),
            "heartbeat_interval_ms": self.heartbeat_interval_ms,
            "max_extension_ms": self.max_extension_ms,
            "gov_roles": list(self.gov_roles),
            "gov_approval_pct": self.gov_approval_pct,
        }

    @staticmethod
    def from_json(p: Any) -> Policy:
        """A policy from its JSON form; fields left out take their defaults."""
        d = Policy()
        known = set(Policy.__dataclass_fields__)
        if set(p) - known:
            raise _bad(f"unknown policy fields {sorted(set(p) - known)}")
        policy = Policy(
            min_grade=str(p.get("min_grade", d.min_grade)),
            extension_consents=tuple(str(r) for r in p.get("extension_consents", d.extension_consents)),
            heartbeat_interval_ms=int(p.get("heartbeat_interval_ms", d.heartbeat_interval_ms)),
            max_extension_ms=int(p.get("max_extension_ms", d.max_extension_ms)),
            gov_roles=tuple(str(r) for r in p.get("gov_roles", d.gov_roles)),
            gov_approval_pct=int(p.get("gov_approval_pct", d.gov_approval_pct)),
        )
        if policy.min_grade not in GRADES:
            raise _bad(f"min_grade must be one of {GRADES}")
        if any(r not in ROLES for r in (*policy.extension_consents, *policy.gov_roles)):
            raise _bad(f"policy roles must be among {ROLES}")
        if not 1 <= policy.gov_approval_pct <= 100:
            raise _bad("gov_approval_pct must be 1..100")
        return policy


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
    empty_block_after_ms: int = 1000
    """After this long with no transaction, the primary proposes one empty block when the
    head's state is not yet certified by a header (docs/protocol.md, "quiet chain"), so the
    latest state of a quiet chain can be verified; 0 never proposes one."""

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Genesis:
    chain_id: str
    genesis_time_ms: int
    members: tuple[Member, ...]
    validators: tuple[Validator, ...]
    policy: Policy = field(default_factory=Policy)
    consensus: ConsensusParams = field(default_factory=ConsensusParams)

    def member(self, member_id: str) -> Member | None:
        for m in self.members:
            if m.id == member_id:
                return m
        return None

    @property
    def validator_ids(self) -> tuple[str, ...]:
        """Node ids of the validators, in order (primary of view v: index v mod n)."""
        return tuple(v.node_id for v in self.validators)

    def validator_keys(self) -> dict[str, bytes]:
        """Validator node id → node public key, in validator order."""
        return {v.node_id: v.node_pub for v in self.validators}

    def validator(self, node_id: str) -> Validator | None:
        for v in self.validators:
            if v.node_id == node_id:
                return v
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.genesis_time_ms,
            "members": [m.to_json() for m in self.members],
            "validators": [v.to_json() for v in self.validators],
            "policy": self.policy.to_json(),
            "consensus": self.consensus.to_json(),
        }

    def hash(self) -> bytes:
        """prev_hash of block 1."""
        return sha256(codec.encode(self.to_json()))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: str | Path, draft: bool = False) -> Genesis:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _bad(f"{path} not found") from None
        except (OSError, ValueError) as exc:
            raise _bad(f"{path} is not JSON ({exc.__class__.__name__})") from None
        return Genesis.from_json(doc, draft)

    @staticmethod
    def from_json(doc: Any, draft: bool = False) -> Genesis:
        """Check and read a genesis document; `draft` admits one without validators yet."""
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
            names = [m.name for m in members]
            if len(set(names)) != len(names):
                raise _bad("duplicate member name")
            validators = tuple(Validator.from_json(v) for v in doc["validators"])
            if not validators and not draft:
                raise _bad("no validators")
            node_ids = [v.node_id for v in validators]
            if len(set(node_ids)) != len(node_ids) or set(node_ids) & set(ids):
                raise _bad("validator node ids must be distinct, and apart from member ids")
            for v in validators:
                if v.member not in ids:
                    raise _bad(f"validator {v.node_id} is run by {v.member}, who is not a member")
            policy = Policy.from_json(doc.get("policy", {}))
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
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _bad(f"missing or malformed field ({exc.__class__.__name__}: {exc})") from None
