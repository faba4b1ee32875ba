"""A device gateway: signs reports as its device and seals their data to exactly
the parties who must read them (the warehouse, and the bank, insurer and
guarantor of the lot's open case), then submits them to any node's RPC (through `node.client.DeviceReporter`, which
resends a report's same signed bytes while the node is unavailable).

`godown gateway run` simulates the four device kinds of a supervised warehouse:
a scale (weight of the lot), an RFID gate (tags seen), a climate sensor
(temperature and humidity) and a door sensor (open/closed).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from contracts.records import OPEN_STATES
from node.client.reporter import DeviceReporter
from node.client.rpc import RpcClient
from node.client.sync import Client
from primitives.errors import Code, GodownError
from primitives.keys import KeyPair


def recipients_for(client: RpcClient, device_id: str, lot_id: str) -> dict[str, bytes]:
    """id → X25519 key of everyone who must be able to open a report on this lot."""
    device = client.get(f"/v1/devices/{quote(device_id, safe='')}")
    parties = [device["warehouse"]]
    if lot_id:
        lot = client.get(f"/v1/lots/{quote(lot_id, safe='')}")
        if lot.get("case"):
            case = client.get(f"/v1/cases/{quote(lot['case'], safe='')}")
            if case.get("state") in OPEN_STATES:
                # a case names its bank, a supervision its supervisor
                parties += [case.get(k) for k in ("bank", "supervisor", "insurer", "guarantor") if case.get(k)]
    keys = {m["id"]: bytes.fromhex(m["enc_pub"]) for m in client.get("/v1/members")["members"]}
    missing = [p for p in parties if p not in keys]
    if missing:
        raise GodownError(Code.UNKNOWN_MEMBER, f"no encryption key on chain for {', '.join(missing)}")
    return {p: keys[p] for p in parties}


def reading_for(device_kind: str, seq: int, rng: random.Random) -> dict[str, Any]:
    """One simulated measurement (integers only: grams, centi-degrees, per-mille humidity)."""
    if device_kind == "scale":
        return {"weight_g": 1_000_000 + rng.randint(-500, 500)}
    if device_kind in ("rfid", "rfid-gate"):
        return {"tags_seen": [f"tag-{i:04d}" for i in range(rng.randint(0, 3))]}
    if device_kind == "door":
        return {"door": "closed"}
    return {"temp_centi_c": 1800 + rng.randint(-50, 50), "humidity_permille": 550 + rng.randint(-20, 20)}


def run_gateway(
    device_key: str,
    lot_id: str,
    kind: str,
    interval: float,
    count: int,
    rpc_url: str,
    token: str | None,
    echo: Callable[[str], None] = print,
) -> None:
    """Report every `interval` seconds until `count` reports (0: until interrupted)."""
    key = KeyPair.load(device_key)
    if key.role != "device":
        raise GodownError(Code.FORBIDDEN_ROLE, f"{device_key} is a {key.role} key, not a device key")
    client = Client(rpc_url, token)
    device = client.device(key.id)
    reporter = DeviceReporter(client, key, lot_id, {})
    rng = random.Random()
    sent = 0
    while count == 0 or sent < count:
        reporter.recipients = recipients_for(client.rpc, key.id, lot_id)  # the lot's parties change with its case
        data = reading_for(str(device.get("kind", "")), reporter.seq, rng)
        data["at_ms"] = int(time.time() * 1000)
        delivery = reporter.report(kind, data, wait_ms=10_000)
        answer, stx = delivery.answer, delivery.signed
        echo(
            f"report seq {stx.tx.body['seq']} → {answer.code} {answer.result or ''} tx {stx.tx_id_hex[:16]}… "
            f"sealed to {len(reporter.recipients)} parties"
        )
        sent += 1
        if count == 0 or sent < count:
            time.sleep(interval)
