"""Property tests of governance: whatever the proposals, votes and waits (valid or
not, by anyone, one transaction per block),

- no action runs below its threshold: approvals by the governors of that moment
  reach ceil(pct × governors / 100), and for a validator-set change the members
  of 2f+1 of the current validators approved;
- the validator set (current and scheduled) is never empty, never repeats a
  node, and the set that will govern holds members only; at least one member
  always governs; no open proposal is past its expiry;
- replaying the same transactions from genesis gives the same results and state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import contracts
from contracts import BlockContext, DictState
from contracts.members import load_policy
from contracts.state import K_VALIDATORS_NEXT, decoded_values_intact
from node.client.txs import sign_tx
from node.tools.participants import Participants
from primitives.block import quorum_size
from primitives.genesis import Policy
from primitives.keys import KeyPair
from primitives.tx import SignedTx
from tests.contracts.chain import World, verify_real
from tests.contracts.gov import card, newcomer, node_of

SEED = b"gov-props"
_P = Participants.generate(seed=SEED)
NEWCOMERS = [newcomer(f"nc{i}", role) for i, role in enumerate(("bank", "insurer", "borrower"))]
SIGNERS: list[KeyPair] = [*_P.members(), *NEWCOMERS]
_BANK = _P.bank
ACTIONS: list[tuple[str, dict[str, Any]]] = [
    ("member.add", {"card": card(NEWCOMERS[0])}),
    ("member.add", {"card": card(NEWCOMERS[1], node_of("nc1"), 31001)}),
    ("member.add", {"card": card(NEWCOMERS[2])}),
    ("validator.add", {"card": card(_P.bank2, node_of("b2"), 31002)}),  # type: ignore[arg-type]
    ("validator.add", {"card": card(_P.auditor, node_of("au"), 31003)}),
    ("node.rotate_key", {"node_id": _P.node_key(_BANK).id, "card": card(_BANK, node_of("bank-new"), 31004)}),
    *[("validator.remove", {"node_id": _P.node_key(k).id}) for k in (_P.warehouse, _BANK, _P.insurer)],
    ("validator.remove", {"node_id": node_of("nc1").id}),
    *[("member.remove", {"member": k.id}) for k in (_P.guarantor, _P.borrower, _P.bank2, NEWCOMERS[1])],  # type: ignore[union-attr]
    *[
        ("member.set_role", {"member": k.id, "role": r})
        for k in (_P.insurer, _P.auditor, _P.bank2)  # type: ignore[union-attr]
        for r in ("bank", "borrower")
    ],
    *[("policy.set", {"field": "gov_approval_pct", "value": v}) for v in (1, 34, 67, 100)],
    ("policy.set", {"field": "gov_roles", "value": ["bank", "auditor"]}),
]

_GOVERNORS = [0, 1, 2, 3, 6]  # warehouse, bank, insurer, guarantor, bank2 (indexes into SIGNERS)
_SIGNER = st.one_of(*[st.sampled_from(_GOVERNORS)] * 3, st.integers(0, len(SIGNERS) - 1))
_LATEST = st.one_of(*[st.just(0)] * 3, st.integers(0, 3))  # mostly the latest open proposal
_VOTE = st.tuples(st.just("vote"), _SIGNER, _LATEST, st.one_of(st.booleans(), *[st.just(True)] * 2))
OP = st.one_of(
    st.tuples(
        st.just("propose"),
        _SIGNER,
        st.integers(0, 9),  # 0: reuse the last id (proposal_exists)
        st.integers(0, len(ACTIONS) - 1),
        st.sampled_from([3_000, 20_000, 10**9, 10**9]),
    ),
    *[_VOTE] * 4,
    st.tuples(st.just("wait"), st.integers(1, 6)),
    st.tuples(st.just("rally")),  # every genesis governor approves the latest open proposal, a block each
)


def _tx(w: World, op: tuple[Any, ...]) -> list[SignedTx]:
    """The op's transaction: proposals get fresh ids, votes go to an open proposal
    (the latest, mostly; any proposal, or none, once nothing is open)."""
    if op[0] == "wait":
        return []
    signer = SIGNERS[op[1]]
    nonce = contracts.next_nonce(w.chain.state, signer.id)
    known = [p["id"] for p in contracts.list_proposals(w.chain.state)]
    if op[0] == "propose":
        action, args = ACTIONS[op[3]]
        pid = known[-1] if known and op[2] == 0 else f"p{len(known):03d}"
        body = {"proposal": pid, "action": action, "args": args, "expires_ms": w.now + op[4]}
        return [sign_tx(signer, "test-chain", nonce, "gov.propose", body)]
    targets = [p["id"] for p in contracts.list_proposals(w.chain.state, "open")] or known or ["none"]
    body = {"proposal": targets[-1 - op[2] % len(targets)], "approve": op[3]}
    return [sign_tx(signer, "test-chain", nonce, "gov.vote", body)]


def _governors(state: DictState) -> set[str]:
    roles = set(load_policy(state).gov_roles)
    return {m["id"] for m in contracts.view_members(state) if m["role"] in roles}


def _after_hook(w: World, advance: int) -> DictState:
    """The state as the block's transactions see it: after its time hook."""
    c = w.chain
    ctx = BlockContext(c.genesis.chain_id, c.height + 1, c.time_ms + advance, c.genesis.validator_ids[0])
    hooked = DictState(c.state.items())
    hooked.apply(contracts.execute_block(c.state, ctx, [], verify_real).changes)
    return hooked


def _check_threshold(w: World, pre: DictState, txs: list[SignedTx]) -> None:
    before = {p["id"]: p["state"] for p in contracts.list_proposals(pre)}
    executed = [
        p
        for p in contracts.list_proposals(w.chain.state)
        if p["state"] == "executed" and before.get(p["id"]) != "executed"
    ]
    assert len(executed) <= len(txs), executed
    for p in executed:
        assert txs and txs[0].tx.body["proposal"] == p["id"]
        gov = _governors(pre)
        yes = gov & set(p["approvals"])
        pct = load_policy(pre).gov_approval_pct
        assert len(yes) * 100 >= pct * len(gov), (p, gov)
        if w.chain.outcomes[-1].changes.get(K_VALIDATORS_NEXT) is not None:
            current, _ = contracts.validator_schedule(pre)
            assert sum(1 for v in current if v.member in yes) >= quorum_size(len(current)), p


def _check_invariants(w: World) -> None:
    state = w.chain.state
    current, pending = contracts.validator_schedule(state)
    members = {m["id"] for m in contracts.view_members(state)}
    assert current and len({v.node_id for v in current}) == len(current)
    if pending is not None:
        assert pending[1] and len({v.node_id for v in pending[1]}) == len(pending[1])
        assert pending[0] > w.chain.height - 1 and pending[0] % w.chain.genesis.consensus.checkpoint_interval == 0
    assert {v.member for v in (pending[1] if pending else current)} <= members
    assert _governors(state)
    assert all(p["expires_ms"] > w.now for p in contracts.list_proposals(state, "open"))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(OP, min_size=1, max_size=40), pct=st.sampled_from([20, 50, 67]))
def test_governance_invariants_and_replay(ops: list[tuple[Any, ...]], pct: int) -> None:
    w = World(policy=Policy(gov_approval_pct=pct), seed=SEED)
    blocks: list[tuple[list[SignedTx], int]] = []
    steps = [step for op in ops for step in ([("vote", g, 0, True) for g in _GOVERNORS] if op[0] == "rally" else [op])]
    for op in steps:
        txs, advance = _tx(w, op), 1000 * (op[1] if op[0] == "wait" else 1)
        pre = _after_hook(w, advance)
        w.run(*txs, advance_ms=advance)
        blocks.append((txs, advance))
        _check_threshold(w, pre, txs)
        _check_invariants(w)
    assert decoded_values_intact()
    again = World(policy=Policy(gov_approval_pct=pct), seed=SEED)
    for txs, advance in blocks:
        again.run(*txs, advance_ms=advance)
    assert [o.results for o in again.chain.outcomes] == [o.results for o in w.chain.outcomes]
    assert again.chain.state.items() == w.chain.state.items()
