"""The per-block time hook (BeginBlock): judged by block time only.

Due-time indexes in state — heartbeats, maturities, proposal expiries; key =
prefix + big-endian due time + id — make it cheap: a block reads only the
entries due by its time, never every device, case or proposal. Entries are
moved lazily — a report does not touch the index; when an entry comes due the
hook looks at the record and either fires or re-files it.
"""

from __future__ import annotations

from contracts.alarms import raise_alarm
from contracts.cases import mature
from contracts.context import Exec
from contracts.devices import last_seen
from contracts.governance import expire
from contracts.records import get_record
from contracts.state import P_DEVICE, P_HEARTBEAT_DUE, P_MATURITY_DUE, P_PROPOSAL_DUE, due_key, due_of, zone_key
from contracts.validators import switch_if_due


def _due_entries(ctx: Exec, prefix: bytes) -> list[tuple[bytes, int, str]]:
    now = ctx.now
    out = []
    for key, _ in ctx.state.base_scan(prefix):
        due, ident = due_of(prefix, key)
        if due > now:
            break
        out.append((key, due, ident))
    return out


def begin_block(ctx: Exec) -> None:
    """A scheduled validator set whose height has come; proposals past their expiry;
    heartbeat alarms for silent accepted devices; overdue for cases past maturity."""
    switch_if_due(ctx)
    for key, _, proposal_id in _due_entries(ctx, P_PROPOSAL_DUE):
        expire(ctx, key, proposal_id)
    for key, due, device_id in _due_entries(ctx, P_HEARTBEAT_DUE):
        _heartbeat(ctx, key, due, device_id)
    for key, due, case_id in _due_entries(ctx, P_MATURITY_DUE):
        ctx.state.delete(key)
        rec = get_record(ctx, case_id)
        if rec is None or rec["state"] != "disbursed":
            continue
        if not mature(ctx, rec):
            ctx.state.put(due_key(P_MATURITY_DUE, rec["end_ms"], case_id), b"")


def _heartbeat(ctx: Exec, key: bytes, due: int, device_id: str) -> None:
    ctx.state.delete(key)
    dkey = P_DEVICE + device_id.encode()
    d = ctx.state.get(dkey)
    if d is None or d["hb_due"] != due:
        return  # a stale entry
    if d["state"] != "accepted":
        ctx.state.put(dkey, {**d, "hb_due": None})
        return
    _, seen_ms = last_seen(ctx, device_id)
    actual = seen_ms + ctx.policy.heartbeat_interval_ms
    if actual > ctx.now:
        ctx.state.put(due_key(P_HEARTBEAT_DUE, actual, device_id), b"")
        ctx.state.put(dkey, {**d, "hb_due": actual})
        return
    alarm_id = f"hb-{device_id}-{due}"
    zone = ctx.state.get(zone_key(d["warehouse"], d["zone"]))
    lot_id = zone["lot"] if zone is not None else None
    ctx.state.put(dkey, {**d, "hb_due": None, "alarm": alarm_id})
    raise_alarm(
        ctx,
        alarm_id,
        "heartbeat",
        device_id,
        lot_id,
        detail=f"silent since {seen_ms}, interval {ctx.policy.heartbeat_interval_ms} ms",
    )
