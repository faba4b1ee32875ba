"""The host speaks Noise and yamux only: a peer offering plaintext or mplex gets nowhere.

The peer here is a bare py-libp2p host using the allowed member's own key, so
only the wire protocol differs from a legitimate peer.
"""

from __future__ import annotations

import pytest
import trio
from libp2p import MPLEX_PROTOCOL_ID, PLAINTEXT_PROTOCOL_ID, YAMUX_PROTOCOL_ID, InsecureTransport, new_host
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.mplex.mplex import Mplex
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from p2p.identity import libp2p_key_pair, peer_id, tcp_multiaddr
from tests.p2p.conftest import Cluster, free_port, new_member

pytestmark = pytest.mark.timeout(120)


def try_to_talk(seed: bytes, target_pub: bytes, target_port: int, plaintext: bool, mplex: bool) -> str:
    """Dial the service with a bare host and open a godown stream; return what happened."""
    kp = libp2p_key_pair(seed)
    sec = (
        {TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(kp)}
        if plaintext
        else {TProtocol(NOISE_PROTOCOL_ID): NoiseTransport(kp, noise_privkey=new_x25519_key_pair().private_key)}
    )
    mux = {TProtocol(MPLEX_PROTOCOL_ID): Mplex} if mplex else {TProtocol(YAMUX_PROTOCOL_ID): Yamux}
    listen = Multiaddr(tcp_multiaddr(free_port()))

    async def main() -> str:
        host = new_host(key_pair=kp, sec_opt=sec, muxer_opt=mux, listen_addrs=[listen])  # type: ignore[arg-type]
        async with host.run(listen_addrs=[listen]):
            target = peer_id(target_pub)
            try:
                with trio.fail_after(8):
                    await host.connect(PeerInfo(target, [Multiaddr(tcp_multiaddr(target_port))]))
                    stream = await host.new_stream(target, [TProtocol("/godown/1.0.0")])
                    await stream.write(b"\x00\x00\x00\x05hello")
                    await trio.sleep(0.5)
            except trio.TooSlowError:
                return "timeout"
            except Exception as exc:
                return f"refused: {exc.__class__.__name__}"
            return "talked"

    return trio.run(main)


@pytest.mark.parametrize(("plaintext", "mplex"), [(True, False), (False, True)])
def test_plaintext_or_mplex_peer_cannot_deliver(cluster: Cluster, plaintext: bool, mplex: bool) -> None:
    a, b = new_member("a"), new_member("b")
    cluster.members = [a, b]
    cluster.start(a)  # b is allowed, but b's "host" below speaks the wrong protocols
    outcome = try_to_talk(b.keys.sign_seed, a.keys.sign_pub, a.port, plaintext, mplex)
    assert outcome.startswith("refused")  # promptly, not after a hang
    assert a.inbox.count("b") == 0


def test_control_the_same_bare_host_with_noise_and_yamux_is_heard(cluster: Cluster) -> None:
    a, b = new_member("a"), new_member("b")
    cluster.members = [a, b]
    cluster.start(a)
    assert try_to_talk(b.keys.sign_seed, a.keys.sign_pub, a.port, plaintext=False, mplex=False) == "talked"
    assert a.inbox.wait("b", 1) == [b"hello"]
