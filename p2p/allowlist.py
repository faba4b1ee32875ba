"""Permissioning: Noise, refusing any remote peer id not on the allowlist.

py-libp2p's `ConnectionGate` filters by IP address only. The remote peer id is
first known, authenticated, at the end of the security handshake, so the check
sits exactly there: this transport runs the ordinary Noise XX handshake and then
closes the connection (and logs the peer id, never key material) unless the
remote id is allowed. The connection never reaches the muxer, so a refused peer
cannot open a stream, and its frames are never delivered.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from libp2p.abc import IRawConnection, ISecureConn
from libp2p.crypto.keys import KeyPair as Libp2pKeyPair
from libp2p.crypto.x25519 import create_new_key_pair as new_x25519_key_pair
from libp2p.peer.id import ID
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import Transport as NoiseTransport

from primitives.errors import Code

log = logging.getLogger("godown.p2p")


class AllowlistNoise(NoiseTransport):
    """Noise XX whose handshake fails for remote peers that `allowed(peer_id)` rejects."""

    def __init__(self, key_pair: Libp2pKeyPair, allowed: Callable[[ID], bool]) -> None:
        super().__init__(key_pair, noise_privkey=new_x25519_key_pair().private_key)
        self._allowed = allowed

    async def _check(self, conn: ISecureConn, direction: str) -> ISecureConn:
        remote = conn.get_remote_peer()
        if self._allowed(remote):
            return conn
        log.warning(
            "p2p refused peer not in allowlist: peer_id=%s direction=%s",
            remote.to_base58(),
            direction,
            extra={"peer_id": remote.to_base58(), "direction": direction, "code": Code.UNAUTHORIZED.value},
        )
        with contextlib.suppress(Exception):
            await conn.close()
        raise HandshakeFailure(f"peer {remote.to_base58()} is not in the allowlist")

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        return await self._check(await super().secure_inbound(conn), "inbound")

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        return await self._check(await super().secure_outbound(conn, peer_id), "outbound")
