"""A device's side of monitoring (DESIGN §6): seal each reading to the lot's recipients,
sign it as the device, submit it, and keep the device's sequence number and nonce.

A report that could not be delivered (`unavailable`: the node down or restarting) is
sent again as the *same signed bytes*, never re-signed with a fresh nonce or sequence
number, so a report the node did receive before the connection broke is not recorded
twice: the resend is answered `duplicate`, and the reporter then reads where it committed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.client.api import Submitted
from node.client.reports import device_report
from node.client.resume import Backoff
from node.client.sync import Client
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair
from primitives.tx import SignedTx

WAIT_MS = 30_000


@dataclass(frozen=True)
class Delivery:
    """A report as submitted: its signed bytes and what the node answered."""

    signed: SignedTx
    answer: Submitted


class DeviceReporter:
    """Reports of one device on one lot, sealed to `recipients` (member id → X25519
    public key: the warehouse and every party of the lot's open case).

    `seq` and `nonce` default to the node's view of the device (its last sequence number
    + 1, its next nonce); both advance only once a report is in (accepted or committed)."""

    def __init__(
        self,
        client: Client,
        device: KeyPair,
        lot: str,
        recipients: Mapping[str, bytes],
        *,
        seq: int | None = None,
        nonce: int | None = None,
        retries: int = 8,
        backoff: Backoff = Backoff(),
    ) -> None:
        self.client = client
        self.device = device
        self.lot = lot
        self.recipients = dict(recipients)
        self.chain_id = client.status().chain_id
        self.seq = self._next_seq() if seq is None else seq
        self.nonce = client.next_nonce(device.id) if nonce is None else nonce
        self.retries = retries
        self.backoff = backoff

    def _next_seq(self) -> int:
        """The device's last committed sequence number + 1 (0 before its first report)."""
        try:
            return int(self.client.device(self.device.id).get("seq", -1)) + 1
        except GodownError as exc:
            if exc.code is not Code.NOT_FOUND:
                raise
            return 0  # not registered yet: its reports are refused until it is

    def seal(self, kind: str, data: Mapping[str, Any], quantity: int = 0, pad_to: int = 0) -> SignedTx:
        """The next report, sealed and signed (not yet sent; `send` sends it)."""
        return device_report(
            self.device, self.chain_id, self.nonce, self.seq, self.lot, kind, data, self.recipients, quantity, pad_to
        )

    def report(
        self, kind: str, data: Mapping[str, Any], quantity: int = 0, pad_to: int = 0, wait_ms: int = WAIT_MS
    ) -> Delivery:
        """Seal, sign and submit the next report; with `wait_ms`, wait for its commit."""
        return self.send(self.seal(kind, data, quantity, pad_to), wait_ms)

    def send(self, signed: SignedTx, wait_ms: int = WAIT_MS) -> Delivery:
        """Submit `signed`, resending the same bytes while the node is unavailable."""
        failures = 0
        while True:
            try:
                answer = self.client.submit(signed, wait_ms)
                break
            except GodownError as exc:
                if exc.code is Code.DUPLICATE:  # an earlier attempt got through
                    answer = self._where(signed)
                    break
                if exc.code is not Code.UNAVAILABLE or failures >= self.retries:
                    raise
            failures += 1
            time.sleep(self.backoff.delay(failures))
        self.nonce = signed.tx.nonce + 1
        if answer.result in (None, Code.OK.value):
            self.seq = int(signed.tx.body["seq"]) + 1
        return Delivery(signed, answer)

    def _where(self, signed: SignedTx) -> Submitted:
        info = self.client.tx(signed.tx_id_hex)
        if info.status == "committed":
            return Submitted(info.tx_id, "committed", info.height, info.index, info.result)
        return Submitted(info.tx_id, "accepted")
