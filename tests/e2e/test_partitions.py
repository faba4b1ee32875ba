"""Partitions between hosts: every node of a ceremony-formed consortium in its own Linux
network namespace, under financing load through the nodes that stay connected.

- the primary's link is cut: the other three change the view and commit again; healed,
  the old primary catches up;
- a backup (a minority of one) is cut off and healed: the others never stop, it catches up;
- a one-way cut of the primary (it sends, nothing reaches it): as good as silent, so it is
  replaced; healed, it catches up.

In every case every acknowledged transaction ends on every node at the same height with the
same result, and all four agree block by block (no fork). Figures as JSON lines (`pytest -s`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.tools.launcher import Consortium
from node.tools.participants import Participants
from tests.e2e import netns
from tests.e2e.formation import form, places
from tests.e2e.manifests import BackgroundLoad, Manifest, Net, emit, wait_until
from tests.e2e.test_multihost import _check_everything

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CUT_S = 8.0  # several view-change timeouts: the cut node falls well behind


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[tuple[Net, netns.Hosts]]:
    reason = netns.available()
    if reason is not None:
        pytest.skip(f"partitions need network namespaces: {reason}")
    p = Participants.generate(devices=4)
    with contextlib.ExitStack() as stack:
        where, wraps, hosts = places(stack, 4)
        assert hosts is not None
        testnet = form(tmp_path, "e2e-partition", p, where, view_change_timeout_ms=1000)
        wrap = dict(zip((n["name"] for n in testnet.nodes), wraps))
        net = Net(tmp_path, Manifest("partition"), formed=(testnet, Consortium(testnet, wrap=wrap), p))
        stack.callback(net.stop_all)
        net.start()
        yield net, hosts


def _head(net: Net, names: list[str]) -> int:
    return max(net.heights(names).values())


@pytest.mark.parametrize(
    ("cut", "who"),
    [("isolate", "primary"), ("isolate", "backup"), ("deafen", "primary")],
)
def test_cut_and_heal(hosted: tuple[Net, netns.Hosts], cut: str, who: str) -> None:
    net, hosts = hosted
    acks = net.run_round(via=net.names, cases=1, reports_per_case=2)
    primary = net.primary()
    victim = primary if who == "primary" else next(n for n in reversed(net.names) if n != primary)
    index = net.names.index(victim)
    others = [n for n in net.names if n != victim]
    view_before = int(net.status(others[0])["view"])
    with BackgroundLoad(net, via=others, cases=2, reports_per_case=3) as load:
        load.wait_acks(20, timeout=60)
        at_cut = _head(net, others)
        cut_at = time.monotonic()
        getattr(hosts, cut)(index)
        # commits resume among the other three (beyond what was in flight at the cut)
        resumed = wait_until(lambda: _head(net, others) >= at_cut + 3, timeout=60, step=0.1)
        resume_s = time.monotonic() - cut_at
        assert resumed, f"no commits for 60 s after cutting the {who} {victim} ({cut})"
        time.sleep(max(0.0, CUT_S - (time.monotonic() - cut_at)))
        head_while_cut = _head(net, others)
        getattr(hosts, "heal" if cut == "isolate" else "undeafen")(index)
        healed_at = time.monotonic()
        load.wait_acks(len(load.acks) + 20, timeout=60)
    assert load.error is None, load.error
    acks += load.acks
    head = max(a.height for a in acks)
    net.wait_heights(head, [victim], timeout=60)
    caught_up_s = time.monotonic() - healed_at
    _check_everything(net, acks, head)
    view_after = int(net.status(others[0])["view"])
    emit(
        "partition",
        cut=cut,
        who=who,
        node=victim,
        resume_s=round(resume_s, 2),
        blocks_while_cut=head_while_cut - at_cut,
        caught_up_s=round(caught_up_s, 2),
        view_before=view_before,
        view_after=view_after,
        acked=len(acks),
    )
    if who == "primary":
        assert view_after > view_before, "the cut primary kept its view"
    else:
        assert view_after == view_before, "cutting a backup cost the primary its view"
