"""Executing a block (FinalizeBlock) and admitting a transaction (CheckTx).

Per transaction, in this order: chain id → sender registered → signature →
nonce → expiry → type → role → body → handler. A transaction refused after its
nonce check consumes the nonce and changes nothing else (the overlay journal is
rolled back); one refused before it changes nothing at all. The executor never
writes to the state it is given: it returns the changes for the node to commit.
A signature is checked against the key in force for the block: a key rotated in
it keeps signing to the block's end, as in the committed state nodes verify with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from contracts.context import BlockContext, BlockOutcome, Exec, reject
from contracts.members import load_policy, sender_identity
from contracts.registry import TX_TYPES, TxSpec
from contracts.state import P_NONCE, Overlay, StateReader, decode_value
from contracts.timehook import begin_block
from primitives.errors import Code, Rejected
from primitives.tx import SignedTx

Verify = Callable[[SignedTx, bytes], bool]
"""verify(signed_tx, sign_pub) -> bool; injected so the node can cache results."""

_OK = Code.OK.value


def next_nonce(state: StateReader, sender: str) -> int:
    """The nonce the sender's next transaction must carry (0 for a new sender)."""
    raw = state.get(P_NONCE + sender.encode())
    return 0 if raw is None else int(decode_value(raw))


def execute_block(state: StateReader, ctx: BlockContext, txs: Sequence[SignedTx], verify: Verify) -> BlockOutcome:
    """Run the time hook, then every transaction; return codes, changes and events."""
    overlay = Overlay(state)
    ex = Exec(ctx, overlay, load_policy(state))
    begin_block(ex)
    overlay.forget_journal()
    results = tuple([_execute_tx(ex, stx, verify) for stx in txs])
    return BlockOutcome(results, overlay.changes(), tuple(ex.events))


def _execute_tx(ex: Exec, stx: SignedTx, verify: Verify) -> str:
    tx = stx.tx
    ov = ex.state
    if tx.chain_id != ex.block.chain_id:
        return Code.WRONG_CHAIN.value
    ident = sender_identity(ov, tx.sender, ex.block.height)
    if ident is None:
        return Code.UNKNOWN_SENDER.value
    role, sign_pub = ident
    if not verify(stx, sign_pub):
        return Code.BAD_SIGNATURE.value
    nkey = P_NONCE + tx.sender.encode()
    expected = ov.get(nkey) or 0
    if tx.nonce != expected:
        return Code.BAD_NONCE.value
    ov.put(nkey, expected + 1)
    ov.forget_journal()
    n_events = len(ex.events)
    try:
        if tx.valid_until_ms is not None and ex.block.time_ms > tx.valid_until_ms:
            raise reject(Code.EXPIRED, f"valid until {tx.valid_until_ms}")
        spec = _spec_for(tx.type, role)
        spec.check_body(tx.body)
        spec.handler(ex, stx, tx.body)
    except Rejected as exc:
        ov.rollback(0)
        del ex.events[n_events:]
        return exc.code.value
    ov.forget_journal()
    return _OK


def _spec_for(tx_type: str, role: str) -> TxSpec:
    spec = TX_TYPES.get(tx_type)
    if spec is None:
        raise reject(Code.UNKNOWN_TX_TYPE, f"no transaction type {tx_type!r}")
    if role not in spec.roles:
        raise reject(Code.FORBIDDEN_ROLE, f"a {role} may not send {tx_type}")
    return spec


NONCE_WINDOW = 10_000
"""Admission takes nonces in [next, next + NONCE_WINDOW), next being the sender's committed
next nonce: room for a client that pipelines thousands of transactions (a bank in a bench
phase), while a nonce far ahead, which could only wait in the mempool, is refused."""


def admit(
    state: StateReader, stx: SignedTx, verify: Verify, chain_id: str, now_ms: int, nonce_window: int = NONCE_WINDOW
) -> None:
    """Mempool checks (raise `Rejected`): chain id, sender registered, signature,
    expiry, type and role, everything the body alone decides, nonce within
    [next, next + window). A transaction refused here keeps its nonce unused."""
    tx = stx.tx
    if tx.chain_id != chain_id:
        raise reject(Code.WRONG_CHAIN, f"chain is {chain_id}, not {tx.chain_id}")
    ident = sender_identity(Overlay(state), tx.sender)
    if ident is None:
        raise reject(Code.UNKNOWN_SENDER, f"{tx.sender} is neither a member nor a registered device")
    role, sign_pub = ident
    if not verify(stx, sign_pub):
        raise reject(Code.BAD_SIGNATURE, "signature does not verify with the sender's key")
    if tx.valid_until_ms is not None and now_ms > tx.valid_until_ms:
        raise reject(Code.EXPIRED, f"valid until {tx.valid_until_ms}")
    _spec_for(tx.type, role).check_body(tx.body)
    first = next_nonce(state, tx.sender)
    if not first <= tx.nonce < first + nonce_window:
        raise reject(Code.BAD_NONCE, f"nonce must be in [{first}, {first + nonce_window})")
