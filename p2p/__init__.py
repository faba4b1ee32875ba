"""Peer-to-peer transport: a permissioned libp2p host behind a narrow, thread-safe seam.

`P2PService` (send / broadcast / on_frame / connected_peers) is all the node
needs; consensus never sees a libp2p type. `identity` derives peer ids from
godown's Ed25519 keys, `framing` cuts length-prefixed frames, `allowlist`
refuses unknown peer ids right after the Noise handshake.
"""

from p2p.framing import MAX_FRAME_DEFAULT, FrameDecoder, encode_frames
from p2p.identity import full_multiaddr, libp2p_key_pair, peer_id, peer_id_str, tcp_multiaddr
from p2p.service import P2PService, PeerStats

__all__ = [
    "MAX_FRAME_DEFAULT",
    "FrameDecoder",
    "P2PService",
    "PeerStats",
    "encode_frames",
    "full_multiaddr",
    "libp2p_key_pair",
    "peer_id",
    "peer_id_str",
    "tcp_multiaddr",
]
