"""Schemas of what the RPC itself builds (node/server/rpc.py, NodeCore.status, the event
stream) and of its error bodies; the contracts' views are in `contracts.view_schemas`.
A field added to one of those answers is added here, and tests/node/test_openapi.py
checks real answers against these schemas with unknown fields refused."""

from __future__ import annotations

from dataclasses import fields

from contracts.view_schemas import CONTRACT_EVENTS, DEVICE, VIEW_SCHEMAS
from node.server.health import CATCHING_UP, NO_QUORUM, NOT_VALIDATOR
from node.server.openapi.bodies import ENVELOPE, SIGNED_TX, TX, body_schemas
from primitives.errors import Code, http_status
from primitives.genesis import ConsensusParams, Policy
from primitives.jschema import (
    ANY,
    BOOL,
    HEX,
    ID,
    INT,
    STR,
    Schema,
    array,
    described,
    enum,
    extend,
    hex_bytes,
    nullable,
    obj,
    ref,
)

HASH = hex_bytes(32)
CODES = [c.value for c in Code]


def error_statuses() -> list[int]:
    """Every status an error body can come with (the codes' statuses, and 405 for a wrong method)."""
    return sorted({http_status(c) for c in Code} | {405})


def codes_of(status: int) -> list[str]:
    """The codes answered with this status (a wrong method is `malformed`, with 405)."""
    return [c.value for c in Code if http_status(c) == status] or [Code.MALFORMED.value]


def error_schemas() -> dict[str, Schema]:
    """`Error` (any code) and `Error<status>` (the codes that status carries)."""

    def error(codes: list[str], description: str) -> Schema:
        body = obj(
            {"code": described(enum(codes), "stable error code (primitives.errors.Code)"), "message": STR},
            description="what went wrong, for people",
        )
        return obj({"error": body}, description=description)

    out = {"Error": error(CODES, "Every error answer: {error: {code, message}}.")}
    for status in error_statuses():
        out[f"Error{status}"] = error(codes_of(status), f"An error answered with HTTP {status}.")
    return out


TX_VIEW = extend(
    TX,
    {"tx_id": HASH, "raw": described(HEX, "the signed transaction's canonical msgpack {tx, sig}")},
    description="A transaction as the node shows it.",
)
LOCATED = {"height": INT, "index": INT, "result": described(enum(CODES), "the transaction's result code")}
TX_STATUS = extend(
    TX_VIEW,
    {"status": enum(("committed", "pending"))},
    LOCATED,
    description="A transaction: committed (with height, index and result) or pending in the mempool.",
)
HEADER = obj(
    {
        "chain_id": STR,
        "height": INT,
        "prev_hash": HASH,
        "time_ms": INT,
        "view": INT,
        "proposer": ID,
        "txs_root": HASH,
        "state_root": described(HASH, "the state after height - 1"),
        "results_root": described(HASH, "the results of height - 1"),
    }
)
COMMIT = obj(
    {
        "chain_id": STR,
        "height": INT,
        "view": INT,
        "block_hash": HASH,
        "votes": array(
            {"type": "array", "prefixItems": [ID, hex_bytes(64)], "minItems": 2, "maxItems": 2},
            description="[validator node id, Ed25519 signature] pairs",
        ),
    },
    description="The commit certificate: 2f+1 validator signatures over the block.",
)
BLOCK = obj(
    {
        "height": INT,
        "hash": HASH,
        "header": ref("Header"),
        "txs": array(extend(TX_VIEW, {"result": LOCATED["result"]})),
        "commit": nullable(ref("Commit")),
        "raw": described(HEX, "the block's canonical msgpack"),
        "commit_raw": nullable(HEX),
    }
)
STATE_ENTRY = obj(
    {
        "key": HEX,
        "exists": BOOL,
        "value": described(
            ANY,
            "the decoded value (bytes as hex), null if absent or not msgpack: the record as the contracts "
            "store it, which a case shares with a supervision (supervisor, end_ms) where the views use "
            "each request's names",
        ),
        "value_raw": nullable(HEX),
        "height": described(INT, "the head: the entry is the state after it"),
        "state_root": HASH,
        "certified_by_height": described(INT, "the header that certifies state_root"),
        "proof": obj(
            {"siblings": array(HEX), "bucket": nullable(HEX)},
            description="Merkle proof against state_root (docs/protocol.md)",
        ),
    }
)
_REASON = obj({"reason": enum((CATCHING_UP, NO_QUORUM, NOT_VALIDATOR)), "message": STR})
READY = obj(
    {"ready": BOOL, "height": INT, "reasons": array(_REASON)},
    {"error": obj({"code": {"const": Code.NOT_READY.value}, "message": STR})},
    "Readiness; a node not ready answers 503 with the reasons and an error of code not_ready.",
)
STATUS = obj(
    {
        "chain_id": STR,
        "node_id": ID,
        "member_id": described(STR, "the member running this node"),
        "name": STR,
        "height": INT,
        "head_hash": HASH,
        "state_root": described(HASH, "the state after the head"),
        "state_certified": described(BOOL, "whether a header certifies that state yet"),
        "validators": array(ID),
        "mempool": INT,
        "storage": obj({}, {"free_bytes": INT, "reserve_bytes": INT, "accepting": BOOL}),
        "view": INT,
        "primary": ID,
        "peers": array(STR),
        "sync": enum(("solo", "synced", "catching up")),
    },
    {
        "in_view_change": BOOL,
        "stable_checkpoint": INT,
        "snapshot": nullable(obj({"height": INT, "trust_height": INT, "trust_hash": HASH})),
        "validator": BOOL,
        "quorum": INT,
        "validators_reachable": INT,
        "peers_down": array(ID),
        "blocks_behind": INT,
    },
    "The node's view of the chain; the consensus fields after sync are the PBFT engine's.",
)
_SUBMITTED = {
    "tx_id": nullable(HASH),
    "code": described(enum(("accepted", "committed", *CODES)), "accepted, committed, or why it was refused"),
}
SUBMIT_RESULT = obj(
    _SUBMITTED, {"message": STR, **LOCATED}, "One submitted transaction; height, index, result once committed."
)
SUBMITTED = obj(
    {"tx_id": HASH, "code": enum(("accepted", "committed"))},
    LOCATED,
    "A single transaction admitted (or, with wait_ms, committed).",
)
VALIDATORS = obj(
    {
        "validators": array(ref("Validator")),
        "pending": nullable(obj({"effective_height": INT, "validators": array(ref("Validator"))})),
    },
    description="The validator set in force and an approved change (it governs heights above effective_height).",
)


VALIDATOR_CHANGES = obj(
    {
        "changes": array(
            obj(
                {
                    "approved_height": INT,
                    "effective_height": described(INT, "the new set governs heights above it"),
                    "validators": array(ref("Validator")),
                    "entry": obj(
                        {
                            "key": described(HEX, "g/next-validators"),
                            "value": described(HEX, "the scheduled set's canonical msgpack"),
                            "height": described(INT, "the approving height: the entry is the state after it"),
                            "state_root": HASH,
                            "proof": obj({"siblings": array(HEX), "bucket": nullable(HEX)}),
                        }
                    ),
                    "certified_by_height": described(INT, "the header carrying state_root, certified by the old set"),
                }
            )
        ),
        "complete": described(
            BOOL, "false on a node that joined by state sync after a change (it holds no proof for it)"
        ),
    },
    description="Every validator-set change this node executed, each with the proof a light client follows it by.",
)


NEXT = described(nullable(STR), "pass as cursor for the next page; null when there is no more")


def page(name: str, item: Schema, description: str) -> Schema:
    """A list answer: `name` (the items, at most `limit`) and `next`."""
    return obj({name: array(item), "next": NEXT}, description=description)


WHOAMI = obj(
    {
        "chain_id": STR,
        "node_id": ID,
        "member": nullable(
            obj({"id": ID, "name": STR, "role": STR}),
        ),
        "opens_reports": described(BOOL, "whether this node opens the device reports sealed to its member"),
        "token_required": described(BOOL, "whether the RPC asks for the bearer token"),
    },
    description="The member this node belongs to (null if the chain does not list it) and what it serves.",
)
LISTED_DEVICE = extend(
    DEVICE,
    {"silent_ms": described(nullable(INT), "head block time - last_seen_ms; null if it never reported")},
    description="A device as /v1/devices/{id} shows it, with how long it has been silent.",
)
BLOCK_SUMMARY = obj(
    {
        "height": INT,
        "hash": HASH,
        "time_ms": INT,
        "proposer": ID,
        "view": INT,
        "tx_count": INT,
        "signers": described(INT, "votes its commit certificate holds"),
    }
)
TX_ITEM = extend(
    TX_VIEW,
    {**LOCATED, "time_ms": described(INT, "its block's time")},
    description="A committed transaction with its block height, index, result and time.",
)
LOT_HISTORY = obj(
    {
        "lot": ID,
        "points": array(
            obj(
                {
                    "height": INT,
                    "time_ms": INT,
                    "quantity": described(INT, "held after this transaction: received less reported outbound"),
                    "tx_id": HASH,
                    "type": enum(("lot.receive", "device.report")),
                }
            ),
            description="oldest first; only the heights this node holds",
        ),
    }
)
REPORT = obj(
    {
        "tx_id": HASH,
        "height": INT,
        "index": INT,
        "time_ms": INT,
        "device": ID,
        "seq": INT,
        "kind": STR,
        "lot": described(STR, "empty for a plain heartbeat"),
        "quantity": INT,
        "result": LOCATED["result"],
        "recipients": described(array(ID), "who can open the sealed payload"),
        "opened": described(BOOL, "whether this node opened it for its own member"),
        "data": described(ANY, "the decrypted payload (bytes as hex), only when opened (else null)"),
    },
    description="A device report: clear-text fields, and its payload when opened.",
)
VALIDATOR_HEALTH = obj(
    {
        "validators": array(
            obj(
                {
                    "node_id": ID,
                    "member": ID,
                    "connected": described(BOOL, "this node holds an open stream to it (itself: true)"),
                    "last_signed_height": described(
                        nullable(INT), "the newest certificate with its vote among the last 256; null if none"
                    ),
                    "is_self": BOOL,
                }
            )
        )
    },
    description="The validators in force, as this node sees them.",
)
AUDIT_REPORT = obj(
    {
        "source": STR,
        "chain_id": STR,
        "genesis_hash": HASH,
        "ok": BOOL,
        "blocks": INT,
        "txs": INT,
        "signatures_checked": INT,
        "certificates_checked": INT,
        "rejected_txs": INT,
        "first_bad_height": nullable(INT),
        "problem": described(nullable(STR), "code: message of the first problem found"),
        "state_root": described(STR, "the state root the replay computed"),
        "seconds": {"type": "number"},
        "tx_per_s": {"type": "number"},
        "results": described({"type": "object", "additionalProperties": INT}, "transactions per result code"),
    },
    description="What `godown audit replay` reports, for this node's blocks 1..head.",
)


def _fields_of(record: type) -> Schema:
    """Every field of a genesis section (Policy, ConsensusParams), as its to_json writes it."""
    types = {"int": INT, "str": STR, "tuple[str, ...]": array(STR)}
    return obj({f.name: types[str(f.type)] for f in fields(record)})


GENESIS = obj(
    {
        "chain_id": STR,
        "genesis_time_ms": INT,
        "members": array(obj({"id": ID, "name": STR, "role": STR, "sign_pub": HASH, "enc_pub": HASH})),
        "validators": array(ref("Validator")),
        "policy": _fields_of(Policy),
        "consensus": _fields_of(ConsensusParams),
    }
)

BLOCK_EVENT = obj(
    {"kind": {"const": "block"}, "height": INT, "hash": HASH, "txs": INT, "time_ms": INT, "proposer": ID},
    description="A block committed.",
)
TX_EVENT = obj(
    {"kind": {"const": "tx"}, "type": STR, "sender": STR, "tx_id": HASH, **LOCATED},
    description="A transaction committed with its result.",
)
LAGGED = obj(
    {"kind": {"const": "lagged"}, "message": STR},
    description="The last message to a subscriber too slow to keep up; the server then closes the socket. "
    "Reconnect with from_height = the last height seen + 1.",
)


def event_name(kind: str) -> str:
    return f"Event.{kind}"


def event_schemas() -> dict[str, Schema]:
    """A component per event kind and `Event`, one of them by `kind`."""
    kinds = {"block": BLOCK_EVENT, "tx": TX_EVENT, **CONTRACT_EVENTS, "lagged": LAGGED}
    out = {event_name(k): s for k, s in kinds.items()}
    out["Event"] = {
        "oneOf": [ref(event_name(k)) for k in kinds],
        "discriminator": {
            "propertyName": "kind",
            "mapping": {k: f"#/components/schemas/{event_name(k)}" for k in kinds},
        },
        "description": "One WebSocket text message of /v1/events: a JSON document.",
    }
    return out


def component_schemas() -> dict[str, Schema]:
    return {
        **error_schemas(),
        "SignedTx": SIGNED_TX,
        "Tx": TX,
        "Envelope": ENVELOPE,
        **body_schemas(),
        "TxView": TX_VIEW,
        "TxStatus": TX_STATUS,
        "Header": HEADER,
        "Commit": COMMIT,
        "Block": BLOCK,
        "StateEntry": STATE_ENTRY,
        "Health": obj({"alive": {"const": True}}),
        "Ready": READY,
        "Status": STATUS,
        "Submitted": SUBMITTED,
        "SubmitResult": SUBMIT_RESULT,
        "SubmitResults": obj({"results": array(ref("SubmitResult"))}, description="A result per item, in order."),
        **VIEW_SCHEMAS,
        "Members": obj({"members": array(ref("Member"))}),
        "Validators": VALIDATORS,
        "ValidatorChanges": VALIDATOR_CHANGES,
        "Proposals": obj({"proposals": array(ref("Proposal"))}),
        "Genesis": GENESIS,
        "Account": obj(
            {
                "id": STR,
                "committed_nonce": described(INT, "the next nonce as of committed state"),
                "next_nonce": described(INT, "the next nonce counting pending transactions: use this one"),
            }
        ),
        "Whoami": WHOAMI,
        "CaseList": page("cases", ref("CaseOrSupervision"), "Cases and supervisions in id order."),
        "LotList": page("lots", ref("Lot"), "Lots in id order."),
        "ListedDevice": LISTED_DEVICE,
        "DeviceList": page("devices", ref("ListedDevice"), "Devices in id order."),
        "AlarmList": page("alarms", ref("Alarm"), "Alarms in id order."),
        "BlockSummary": BLOCK_SUMMARY,
        "BlockList": page("blocks", ref("BlockSummary"), "Blocks, newest first."),
        "TxItem": TX_ITEM,
        "TxList": page("txs", ref("TxItem"), "Committed transactions, newest first."),
        "LotHistory": LOT_HISTORY,
        "Report": REPORT,
        "ReportList": page("reports", ref("Report"), "Device reports, newest first."),
        "ValidatorHealth": VALIDATOR_HEALTH,
        "AuditReport": AUDIT_REPORT,
        **event_schemas(),
    }
