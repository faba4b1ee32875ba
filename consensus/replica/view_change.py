"""View change: replacing a primary that makes no progress (VIEW-CHANGE, NEW-VIEW).

A replica with work pending that sees no commit for `request_timeout` ticks asks
for view v+1 with a VIEW-CHANGE carrying its stable checkpoint's certificate and
its prepared/committed proofs above it. Once 2f+1 replicas have asked for v+1 or
later, it waits `view_change_timeout` ticks for the NEW-VIEW before asking for
v+2; both waits double with every view change that brings no commit (back-off).
f+1 peers asking for higher views make it join the lowest of them. The new
primary's NEW-VIEW re-proposes exactly what `plan_new_view` derives from 2f+1
VIEW-CHANGEs, so every replica can check it. A replica asking for a view that is
already entered gets that view's NEW-VIEW; one that has committed less than we
have gets the COMMITs of our latest certificate (so it learns it is behind).

With validator-set changes, a replica runs view changes within its epoch (the set
governing the height after its stable checkpoint): it counts VIEW-CHANGEs from that
set's members against its quorum, and only a member asks for a view change. A
NEW-VIEW is judged by the set governing the height after the higher of the
receiver's checkpoint and the NEW-VIEW's; why that is safe is argued in
`consensus.membership`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from consensus.membership import UNBOUNDED, Epoch
from consensus.messages import CommitVote, NewView, Proof, ViewChange, Votes, checkpoint_vote_bytes
from consensus.records import ViewChangeRecord, ViewRecord
from consensus.replica.checkpoints import Checkpoints
from consensus.replica.context import Context, ParentFn
from consensus.replica.normal_case import NormalCase
from primitives.errors import Code

Plan = tuple[int, bytes, Votes, list[tuple[int, bytes, bytes]]]
"""(stable height, its state root, its votes, [(height, digest, payload) re-proposed above it])."""


def plan_new_view(vcs: list[ViewChange], parent_of: ParentFn | None, until: int = UNBOUNDED) -> Plan:
    """Deterministic content of NEW-VIEW: the highest stable checkpoint, then for each
    following height the proof of the highest view, as long as heights are contiguous
    (and, with `parent_of`, each block extends the one chosen below it), up to `until`
    (the end of the checkpoint's epoch: a later epoch is not this NEW-VIEW's to decide)."""
    top = max(vcs, key=lambda vc: (vc.stable_height, vc.sender))
    min_s = top.stable_height
    best: dict[int, Proof] = {}
    for vc in vcs:
        for p in vc.proofs:
            if p.height >= min_s:  # the best proof at min_s names the block at the checkpoint
                old = best.get(p.height)
                if old is None or (p.view, p.digest) > (old.view, old.digest):
                    best[p.height] = p
    plan: list[tuple[int, bytes, bytes]] = []
    below = best[min_s].digest if min_s and min_s in best else None
    h = min_s + 1
    while h in best and h <= until:
        if parent_of is not None and below is not None and parent_of(best[h].payload) != below:
            break  # not linked, hence committed nowhere: proposed afresh in the new view
        below = best[h].digest
        plan.append((h, best[h].digest, best[h].payload))
        h += 1
    return min_s, top.stable_root, top.stable_votes, plan


@dataclass(eq=False)
class ViewChanges:
    """The request and NEW-VIEW timers with their back-off, and the VIEW-CHANGEs seen."""

    ctx: Context = field(repr=False)
    normal: NormalCase = field(repr=False)
    checkpoints: Checkpoints = field(repr=False)

    attempt: int = 0
    """View changes since the last commit: the back-off exponent."""
    pending: bool = False
    """The driver has client work waiting (`expect_progress`)."""
    idle: int = 0
    """Ticks without a commit while busy; at the request timeout, the view changes."""
    wait: int | None = None
    """Ticks waiting for NEW-VIEW since 2f+1 replicas gave up on the views below; None: not yet."""
    resend: int = 0
    """Ticks since our VIEW-CHANGE was last (re-)sent."""
    restored: bool = False
    """Restarted inside a view change: re-send its VIEW-CHANGE on the first tick."""
    received: dict[int, dict[str, ViewChange]] = field(default_factory=dict)
    """new view -> sender -> that sender's latest VIEW-CHANGE."""
    mine: ViewChange | None = None
    entered: NewView | None = None
    """The NEW-VIEW of the latest view entered."""
    replied: dict[tuple[str, int, str], int] = field(default_factory=dict)
    """(peer, view, kind) -> tick of our last answer to that peer."""
    asked_since: dict[str, int] = field(default_factory=dict)
    """sender -> tick since which it has been asking for the view after ours (its latest VIEW-CHANGE)."""
    suspect_until: int = -1
    """Until this tick one other validator's VIEW-CHANGE is enough to join it (`suspect`)."""

    def suspect(self) -> None:
        """A request of ours is past its deadline: join the next asker, and any already waiting."""
        ctx = self.ctx
        self.suspect_until = ctx.ticks + 2 * ctx.config.resend_interval
        if ctx.is_member and not ctx.in_view_change:
            self._join_higher()

    def on_commit(self) -> None:
        self.attempt = 0
        self.idle = 0
        self.pending = False

    def tick(self) -> None:
        ctx, cfg = self.ctx, self.ctx.config
        if not ctx.is_member:
            self._follow()
            return
        if self.restored:
            self.restored = False
            self.start(ctx.view, restore=True)
        if not ctx.in_view_change:
            busy = self.pending or self.normal.busy()
            self.idle = self.idle + 1 if busy else 0
            if self.idle >= cfg.request_timeout << min(self.attempt, cfg.max_backoff_exponent):
                self.start(ctx.view + 1)
            elif self._lone_asker_waited():
                self.start(ctx.view + 1)
            return
        self.resend += 1
        if self.resend >= cfg.resend_interval and self.mine is not None:
            self.resend = 0
            ctx.broadcast(self.mine)
        if self.wait is not None:
            self.wait += 1
            if self.wait >= cfg.view_change_timeout << min(max(0, self.attempt - 1), cfg.max_backoff_exponent):
                self.start(ctx.view + 1)

    def _lone_asker_waited(self) -> bool:
        """A correct validator whose request timed out while ours did not (a primary paused
        just long enough, say) asks for the next view alone; it must never vote in our view
        again (its VIEW-CHANGE promised so), so it stays out — using up the one fault the
        consortium can take — until the others change the view too. After `lone_join`
        ticks of it asking we do, which brings it back; a faulty validator can force at
        most one view change per `lone_join` ticks so."""
        ctx = self.ctx
        wanted = self.received.get(ctx.view + 1, {})
        return any(
            s != ctx.me and ctx.ticks - self.asked_since.get(s, ctx.ticks) >= ctx.config.lone_join for s in wanted
        )

    def _follow(self) -> None:
        """Outside its epoch's set a replica never asks for a view change; with work pending
        and no commit for the request timeout it fetches instead (the validators may have
        committed everything and fallen quiet, so no message would tell it it is behind)."""
        busy = self.pending or self.normal.busy()
        self.idle = self.idle + 1 if busy else 0
        if self.idle >= self.ctx.config.request_timeout:
            self.idle = 0
            self.checkpoints.catch_up.probe()

    # ------------------------------------------------------------------ VIEW-CHANGE

    def start(self, new_view: int, *, restore: bool = False) -> None:
        """Leave the current view for `new_view` (on restart, re-send without re-logging)."""
        ctx, cp = self.ctx, self.checkpoints
        if not ctx.is_member:
            return
        # Back-off: every view change without a commit in between doubles the next waits.
        self.attempt = min(self.attempt + 1, ctx.config.max_backoff_exponent + 1)
        ctx.view, ctx.in_view_change = new_view, True
        self.normal.leave_view(new_view)
        self.idle = self.resend = 0
        self.wait = None
        proofs = self.normal.proofs_in_window()
        vc = ViewChange(new_view, ctx.stable_height, cp.stable_root, cp.stable_votes, proofs, ctx.me, b"")
        vc = replace(vc, sig=ctx.signer.sign(vc.signed_bytes(ctx.config.chain_id)))
        self.mine = vc
        if not restore:
            ctx.persist(ViewChangeRecord(new_view))
        ctx.broadcast(vc)
        self.received.setdefault(new_view, {})[ctx.me] = vc
        self.received = {v: m for v, m in self.received.items() if v >= new_view}
        self._check_quorum(new_view)

    def on_view_change(self, m: ViewChange) -> None:
        ctx, w = self.ctx, m.new_view
        if m.sender not in ctx.current.members:
            return ctx.reject(Code.UNKNOWN_SENDER, f"{m.sender!r} is not a validator after our stable checkpoint")
        if w < ctx.view or (w == ctx.view and not ctx.in_view_change):
            # The sender is behind: answer once with the latest NEW-VIEW we entered.
            if self.entered is not None and self.entered.view >= w and self._may_answer(m.sender, w, "nv"):
                ctx.send(m.sender, self.entered)
            return ctx.reject(Code.WRONG_VIEW, f"view-change to old view {w}")
        have = self.received.get(w, {})
        if m.sender in have:
            self._hint_progress(have[m.sender])
            return ctx.reject(Code.DUPLICATE, "view-change already counted")
        if any(v > w and m.sender in by for v, by in self.received.items()):
            return ctx.reject(Code.WRONG_VIEW, f"{m.sender} already asked for a later view than {w}")
        if not self._valid_view_change(m):
            return
        if self._adopt_boundary(m) and m.sender not in ctx.current.members:
            return ctx.reject(Code.UNKNOWN_SENDER, f"{m.sender!r} is not a validator after our stable checkpoint")
        for by in self.received.values():  # keep only each sender's latest view-change
            by.pop(m.sender, None)
        self.received = {v: by for v, by in self.received.items() if by}
        self.received.setdefault(w, {})[m.sender] = m
        self.asked_since[m.sender] = ctx.ticks  # its latest view-change is this one, from now
        self._hint_progress(m)
        self._join_higher()
        self._check_quorum(ctx.view)

    def _adopt_boundary(self, m: ViewChange) -> bool:
        """A valid VIEW-CHANGE whose stable checkpoint reaches a later epoch than ours: adopt
        that checkpoint (its certificate is what 2f+1 CHECKPOINTs would have shown us), so a
        validator that missed the hand-over joins its new set instead of stalling it."""
        ctx = self.ctx
        if ctx.membership.latest(m.stable_height + 1) is ctx.current or m.stable_height <= ctx.stable_height:
            return False
        self.checkpoints.set_stable(m.stable_height, m.stable_root, m.stable_votes)
        return True

    def on_epoch(self) -> None:
        """Our stable checkpoint entered another epoch: VIEW-CHANGEs of ids outside it no longer
        count, and those that remain are weighed against the new set's quorum and primary."""
        members = self.ctx.current.members
        kept = {v: {s: vc for s, vc in by.items() if s in members} for v, by in self.received.items()}
        self.received = {v: by for v, by in kept.items() if by}
        self._check_quorum(self.ctx.view)

    def _join_higher(self) -> None:
        """f+1 peers want a higher view: join the smallest of them (PBFT liveness rule); one
        is enough while we suspect the primary ourselves (`suspect`)."""
        ctx = self.ctx
        latest: dict[str, int] = {}
        for v, by in self.received.items():
            if v > ctx.view:
                for s in by:
                    if s != ctx.me:
                        latest[s] = max(latest.get(s, 0), v)
        if len(latest) >= ctx.current.f + 1:
            self.start(min(latest.values()))
        elif ctx.ticks <= self.suspect_until and ctx.view + 1 in latest.values():
            self.start(ctx.view + 1)  # only the next view: one faulty asker cannot send us far ahead

    def _valid_proof(self, p: Proof, above: int) -> bool:
        if p.height <= above or self.ctx.digest_of(p.payload) != p.digest:
            return False
        return self.ctx.quorum_signed(p.votes, self.ctx.vote_bytes(p.kind, p.view, p.height, p.digest), p.height)

    def _valid_view_change(self, m: ViewChange) -> bool:
        ctx = self.ctx
        if not ctx.signed_by_sender(m):
            ctx.reject(Code.BAD_SIGNATURE, "view-change signature")
            return False
        if m.stable_height:
            ok = m.stable_height % ctx.config.checkpoint_interval == 0 and ctx.quorum_signed(
                m.stable_votes,
                checkpoint_vote_bytes(ctx.config.chain_id, m.stable_height, m.stable_root),
                m.stable_height,
            )
            if not ok:
                ctx.reject(Code.BAD_CERTIFICATE, "view-change checkpoint proof")
                return False
        heights = [p.height for p in m.proofs]
        if len(set(heights)) != len(heights) or any(h > m.stable_height + ctx.config.high_span for h in heights):
            ctx.reject(Code.BAD_CERTIFICATE, "view-change proofs repeat heights or leave the window")
            return False
        for p in m.proofs:
            if p.view >= m.new_view or not self._valid_proof(p, max(0, m.stable_height - 1)):
                ctx.reject(Code.BAD_CERTIFICATE, f"view-change proof for height {p.height}")
                return False
        return True

    def _hint_progress(self, vc: ViewChange) -> None:
        """A peer asking for a view change that has committed less than we have gets the
        signed COMMITs of our latest certificate (forwarded, still verifiable), so it
        learns it is behind and fetches — or commits at once if it holds the payload."""
        theirs = max([vc.stable_height] + [p.height for p in vc.proofs if p.kind == "commit"])
        cert = self.normal.last_cert
        if cert is None or not theirs < cert.height <= self.ctx.last_committed:
            return
        if self._may_answer(vc.sender, vc.new_view, "commit"):
            for sender, sig in cert.votes:
                self.ctx.send(vc.sender, CommitVote(cert.view, cert.height, cert.block_hash, sender, sig))

    def _may_answer(self, peer: str, view: int, kind: str) -> bool:
        """Rate-limit answers to a peer's re-sent VIEW-CHANGE to one per re-send interval."""
        ctx = self.ctx
        key = (peer, view, kind)
        last = self.replied.get(key)
        if last is not None and ctx.ticks - last < ctx.config.resend_interval:
            return False
        if len(self.replied) > 16 * len(ctx.membership.peers):
            self.replied.clear()
        self.replied[key] = ctx.ticks
        return True

    # ------------------------------------------------------------------ NEW-VIEW

    def _check_quorum(self, w: int) -> None:
        ctx, ep = self.ctx, self.ctx.current
        if not ctx.in_view_change or w != ctx.view:
            return
        # The NEW-VIEW timer starts once 2f+1 replicas have given up on views below w
        # (a VIEW-CHANGE for w or any later view), so lost VIEW-CHANGEs cannot freeze it.
        support = {s for v, by in self.received.items() if v >= w for s in by}
        if self.wait is None and len(support) >= ep.quorum:
            self.wait = 0
        vcs = self.received.get(w, {})
        if len(vcs) < ep.quorum or ctx.me not in vcs or ep.primary_of(w) != ctx.me:
            return
        chosen = [vcs[ctx.me]] + [vcs[s] for s in sorted(vcs) if s != ctx.me][: ep.quorum - 1]
        chosen.sort(key=lambda vc: vc.sender)
        if self._judging_epoch(chosen) is ep:  # else receivers would judge it by another set
            self._send_new_view(w, chosen)

    def _judging_epoch(self, vcs: tuple[ViewChange, ...] | list[ViewChange]) -> Epoch | None:
        """The set a NEW-VIEW made of `vcs` is judged by here: the one governing the height
        after the higher of our stable checkpoint and theirs (module docstring of
        `consensus.membership`)."""
        top = max([self.ctx.stable_height] + [vc.stable_height for vc in vcs])
        return self.ctx.epoch(top + 1)

    def _plan(self, vcs: list[ViewChange]) -> Plan:
        """`plan_new_view`, re-proposing only heights of the epoch of its checkpoint."""
        top = max(vcs, key=lambda vc: (vc.stable_height, vc.sender)).stable_height
        return plan_new_view(vcs, self.ctx.parent_of, self.ctx.membership.end_of(top + 1))

    def _send_new_view(self, w: int, chosen: list[ViewChange]) -> None:
        """As the new primary, announce view w on the strength of `chosen` and enter it."""
        ctx = self.ctx
        _, _, _, plan = self._plan(chosen)
        pps = tuple(self.normal.signed_preprepare(w, h, d, payload) for h, d, payload in plan)
        nv = NewView(w, tuple(chosen), pps, ctx.me, b"")
        nv = replace(nv, sig=ctx.signer.sign(nv.signed_bytes(ctx.config.chain_id)))
        ctx.broadcast(nv)
        self._enter_view(nv)

    def on_new_view(self, m: NewView) -> None:
        ctx, w = self.ctx, m.view
        if w < ctx.view or (w == ctx.view and not ctx.in_view_change):
            return ctx.reject(Code.WRONG_VIEW, f"new-view for old view {w}")
        ep = self._judging_epoch(m.view_changes)
        if ep is None:
            return ctx.reject(Code.OUT_OF_WINDOW, "new-view beyond the validator schedule known here")
        if m.sender != ep.primary_of(w):
            return ctx.reject(Code.NOT_PRIMARY, f"{m.sender} is not the primary of view {w}")
        if not ctx.signed_by_sender(m):
            return ctx.reject(Code.BAD_SIGNATURE, "new-view signature")
        senders = {vc.sender for vc in m.view_changes}
        if (
            len(senders) != len(m.view_changes)
            or len(senders) < ep.quorum
            or not senders <= ep.members
            or any(vc.new_view != w for vc in m.view_changes)
        ):
            return ctx.reject(Code.BAD_CERTIFICATE, "new-view lacks a quorum of view-changes")
        for vc in m.view_changes:
            if not self._valid_view_change(vc):
                return
        _, _, _, plan = self._plan(list(m.view_changes))
        if len(plan) != len(m.pre_prepares):
            return ctx.reject(Code.BAD_CERTIFICATE, "new-view re-proposals do not follow from its view-changes")
        for (h, d, payload), pp in zip(plan, m.pre_prepares):
            if (pp.view, pp.height, pp.digest, pp.payload, pp.sender) != (w, h, d, payload, m.sender):
                return ctx.reject(Code.BAD_CERTIFICATE, "new-view re-proposals do not follow from its view-changes")
            if not ctx.signed_by_sender(pp):
                return ctx.reject(Code.BAD_SIGNATURE, "new-view pre-prepare signature")
        self._enter_view(m)

    def _enter_view(self, nv: NewView) -> None:
        ctx, w = self.ctx, nv.view
        min_s, root, votes, plan = self._plan(list(nv.view_changes))
        floor = max([min_s] + [h for h, _, _ in plan])
        ctx.view, ctx.in_view_change = w, False
        self.normal.enter_view(w, floor)
        self.idle = self.resend = 0
        self.wait = None
        self.entered = nv
        self.received = {v: m for v, m in self.received.items() if v > w}
        self.asked_since = {s: t for s, t in self.asked_since.items() if any(s in by for by in self.received.values())}
        self.checkpoints.restart_resend()
        ctx.persist(ViewRecord(w, floor))
        if min_s > ctx.stable_height:
            self.checkpoints.set_stable(min_s, root, votes)
        self.normal.adopt_new_view(nv.pre_prepares)
