"""A member card: what an organisation hands to the others to join a consortium.

It holds the member's name, role and public keys, and, if the member runs a
validator, its node's public key and advertised p2p address. The member key
signs it, so nothing in it can be altered in transit; the node key signs it too,
so nobody can name a node they do not hold. No private key is in it.

On disk: JSON `{"card": {...}, "sig": hex, "node_sig": hex?}` with bytes as
hex. Signed bytes: the canonical encoding (DESIGN §2) of the card's fields with
bytes as bytes and `"domain": "godown/member-card/v1"` added, so a card
signature can never be replayed as a transaction or vote signature.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from primitives import codec
from primitives.errors import Code, GodownError
from primitives.genesis import ADDRESS, Member, Validator
from primitives.keys import ROLES, KeyPair, id_from_public_key, verify_signature

CARD_DOMAIN = "godown/member-card/v1"


def _bad(message: str) -> GodownError:
    return GodownError(Code.BAD_CARD, f"card: {message}")


@dataclass(frozen=True)
class MemberCard:
    """A member's public face, with the validator node it runs (if any)."""

    id: str
    name: str
    role: str
    sign_pub: bytes
    enc_pub: bytes
    node_pub: bytes | None = None
    p2p_addr: str | None = None
    sig: bytes = b""
    node_sig: bytes = b""

    @property
    def runs_validator(self) -> bool:
        return self.node_pub is not None

    @property
    def node_id(self) -> str | None:
        return None if self.node_pub is None else id_from_public_key(self.node_pub)

    def signed_bytes(self) -> bytes:
        doc: dict[str, Any] = {
            "domain": CARD_DOMAIN,
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "sign_pub": self.sign_pub,
            "enc_pub": self.enc_pub,
        }
        if self.node_pub is not None:
            doc["node"] = {"node_pub": self.node_pub, "p2p_addr": self.p2p_addr}
        return codec.encode(doc)

    @staticmethod
    def make(member: KeyPair, node: KeyPair | None = None, advertise: str | None = None) -> MemberCard:
        """A card signed by the member key (and by the node key, if it runs a node)."""
        if (node is None) != (advertise is None):
            raise _bad("a validator needs both a node key and an advertised address")
        unsigned = MemberCard(
            member.id,
            member.name,
            member.role,
            member.sign_pub,
            member.enc_pub,
            node.sign_pub if node else None,
            advertise,
        )
        body = unsigned.signed_bytes()
        card = MemberCard(
            **{**unsigned.__dict__, "sig": member.sign(body), "node_sig": node.sign(body) if node else b""}
        )
        card.check()
        return card

    def check(self) -> None:
        """Raise unless the card is well formed and both signatures hold."""
        if self.role not in ROLES or self.role == "device":
            raise _bad(f"{self.name}: unknown member role {self.role!r}")
        if not self.id or not self.name:
            raise _bad("id and name must not be empty")
        if len(self.sign_pub) != 32 or len(self.enc_pub) != 32:
            raise _bad(f"{self.name}: public keys must be 32 bytes")
        if (self.node_pub is None) != (self.p2p_addr is None):
            raise _bad(f"{self.name}: a validator needs both a node key and an advertised address")
        if self.node_pub is not None:
            if len(self.node_pub) != 32 or self.node_pub == self.sign_pub:
                raise _bad(f"{self.name}: the node key must be a 32-byte key apart from the member key")
            if not ADDRESS.match(self.p2p_addr or ""):
                raise _bad(f"{self.name}: advertised address {self.p2p_addr!r} is not /ip4|ip6|dns…/tcp/PORT")
        body = self.signed_bytes()
        if not verify_signature(self.sign_pub, body, self.sig):
            raise GodownError(Code.BAD_SIGNATURE, f"card of {self.name}: the member key's signature does not hold")
        if self.node_pub is not None and not verify_signature(self.node_pub, body, self.node_sig):
            raise GodownError(Code.BAD_SIGNATURE, f"card of {self.name}: the node key's signature does not hold")

    def member(self) -> Member:
        return Member(self.id, self.name, self.role, self.sign_pub, self.enc_pub)

    def validator(self) -> Validator | None:
        if self.node_pub is None or self.p2p_addr is None:
            return None
        return Validator(id_from_public_key(self.node_pub), self.id, self.node_pub, self.p2p_addr)

    def to_json(self) -> dict[str, Any]:
        card: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "sign_pub": self.sign_pub.hex(),
            "enc_pub": self.enc_pub.hex(),
        }
        if self.node_pub is not None:
            card["node"] = {"node_pub": self.node_pub.hex(), "p2p_addr": self.p2p_addr}
        doc: dict[str, Any] = {"card": card, "sig": self.sig.hex()}
        if self.node_sig:
            doc["node_sig"] = self.node_sig.hex()
        return doc

    @staticmethod
    def from_json(doc: Any) -> MemberCard:
        """Read and check a card: malformed → `bad_card`, a broken signature → `bad_signature`."""
        try:
            c = doc["card"]
            node = c.get("node")
            extra = set(c) - {"id", "name", "role", "sign_pub", "enc_pub", "node"}
            if extra or set(doc) - {"card", "sig", "node_sig"}:
                raise _bad(f"unknown fields {sorted(extra | (set(doc) - {'card', 'sig', 'node_sig'}))}")
            card = MemberCard(
                id=str(c["id"]),
                name=str(c["name"]),
                role=str(c["role"]),
                sign_pub=bytes.fromhex(c["sign_pub"]),
                enc_pub=bytes.fromhex(c["enc_pub"]),
                node_pub=bytes.fromhex(node["node_pub"]) if node else None,
                p2p_addr=str(node["p2p_addr"]) if node else None,
                sig=bytes.fromhex(doc["sig"]),
                node_sig=bytes.fromhex(doc.get("node_sig", "")),
            )
        except GodownError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _bad(f"missing or malformed field ({exc.__class__.__name__}: {exc})") from None
        card.check()
        return card

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")

    @staticmethod
    def load(path: str | Path) -> MemberCard:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _bad(f"{path} not found") from None
        except (OSError, ValueError) as exc:
            raise _bad(f"{path} is not JSON ({exc.__class__.__name__})") from None
        return MemberCard.from_json(doc)
