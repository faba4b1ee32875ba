"""The node-local transaction index: which entities each committed transaction names.

`Ledger.commit` hands `index_terms` of every transaction to `ChainStore.commit_block`,
which writes one `X:` entry per term in the block's own batch (docs/operations.md,
"The transaction index"). It is the node's own convenience for `/v1/txs` and
`/v1/reports`, not part of the chain: nothing hashed or certified depends on it.
"""

from __future__ import annotations

from collections.abc import Iterator

from contracts.registry import TX_TYPES
from primitives.tx import SignedTx
from storage.chain import MAX_TERM_BYTES

ID_TAG = b"i"
TYPE_TAG = b"t"

ENTITY_FIELDS = frozenset({"lot", "alarm"})
"""Text fields that name an entity although their type is `str` (a report's lot may be
empty; an alarm id is derived, not chosen): indexed like the `id` fields."""

_ID_FIELDS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in spec.fields if f.type == "id" or f.name in ENTITY_FIELDS)
    for name, spec in TX_TYPES.items()
}


def id_term(ident: str) -> bytes:
    return ID_TAG + ident.encode()


def type_term(tx_type: str) -> bytes:
    return TYPE_TAG + tx_type.encode()


def named_ids(stx: SignedTx) -> Iterator[str]:
    """The sender, then every id-valued body field's value (non-empty, once each)."""
    seen = {stx.tx.sender}
    yield stx.tx.sender
    body = stx.tx.body
    for name in _ID_FIELDS.get(stx.tx.type, ()):
        value = body.get(name)
        if isinstance(value, str) and value and value not in seen:
            seen.add(value)
            yield value


def index_terms(stx: SignedTx) -> list[bytes]:
    """What `stx` is found by: each id it names and its type."""
    terms = [id_term(i) for i in named_ids(stx)]
    terms.append(type_term(stx.tx.type))
    assert all(0 < len(t) <= MAX_TERM_BYTES for t in terms), "ids are at most 64 characters"
    return terms
