"""The table of RPC endpoints: for each, what it answers on success and which error
statuses it can give. `make_app` in node/server/rpc.py routes the same paths; a test
checks that the two lists agree."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.governance import PROPOSAL_STATES
from contracts.view_schemas import CASE_STATES, CONTRACT_EVENTS, SUPERVISION_STATES
from node.server.rpc_lists import ALARM_STATES, DEVICE_STATES, LOT_STATES
from primitives.jschema import INT, Schema, described, enum

PUBLIC_PATHS = frozenset({"/v1/health", "/v1/ready", "/openapi.json", "/docs/transactions"})
"""Answered without the bearer token: probes carry none, and these reveal nothing sensitive."""


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # "path" or "query"
    schema: Schema
    description: str


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    op_id: str
    summary: str
    ok: str
    """Component schema of the 200 answer ("" for one that is not JSON: see `document`)."""
    errors: tuple[int, ...]
    """Error statuses besides 401 (which every endpoint outside PUBLIC_PATHS can answer)."""
    params: tuple[Param, ...] = ()

    @property
    def public(self) -> bool:
        return self.path in PUBLIC_PATHS


def _id(what: str) -> Param:
    return Param("id", "path", {"type": "string", "maxLength": 256}, f"{what} id (400 beyond 256 characters)")


FROM_HEIGHT = (
    "Replay committed events from this height, then continue live; a reconnecting client passes its "
    "last seen height + 1. Without it the stream starts with the next committed block."
)
KINDS = (
    f"Comma list of event kinds to receive (all when absent): {', '.join(('block', 'tx', *CONTRACT_EVENTS))}. "
    "A family name takes every kind it prefixes before an underscore: alarm takes alarm_raised and "
    "alarm_resolved, key takes key_rotated."
)
MATCH = (
    "Any other query parameter is an equality filter on the event field of that name, compared as text "
    "(e.g. sender=…, case=C1, lot=L1): an event without the field never matches."
)

LIMIT = Param(
    "limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "at most this many items"
)
CURSOR = Param("cursor", "query", {"type": "string"}, "the `next` of the previous answer (opaque)")
PAGED = (LIMIT, CURSOR)
LIST_ERRORS = (400,)
"""A bad or unknown parameter (a misspelt filter is refused, not ignored): 400 malformed."""


def _q(name: str, description: str, schema: Schema | None = None) -> Param:
    return Param(name, "query", schema or {"type": "string", "maxLength": 256}, description)


BEFORE = _q("before", "only heights below this one (newest first)", {"type": "integer", "minimum": 1})

LIST_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "get",
        "/v1/whoami",
        "whoami",
        "The member this node belongs to, and whether it opens that member's sealed reports and asks for a token.",
        "Whoami",
        (400,),
    ),
    Endpoint(
        "get",
        "/v1/cases",
        "cases",
        "Cases and supervisions in id order, filtered.",
        "CaseList",
        LIST_ERRORS,
        (
            _q("party", "a member named as owner, party, bank, supervisor, warehouse, insurer or guarantor"),
            Param("state", "query", enum((*CASE_STATES, *SUPERVISION_STATES)), "only in this state"),
            Param("kind", "query", enum(("case", "supervision")), "only cases or only supervisions"),
            *PAGED,
        ),
    ),
    Endpoint(
        "get",
        "/v1/lots",
        "lots",
        "Lots in id order, filtered.",
        "LotList",
        LIST_ERRORS,
        (
            _q("warehouse", "only lots in this warehouse"),
            Param(
                "state",
                "query",
                enum(LOT_STATES),
                "pledged: held by a case or supervision; free: not held, goods left; empty: all released",
            ),
            *PAGED,
        ),
    ),
    Endpoint(
        "get",
        "/v1/devices",
        "devices",
        "Devices in id order, filtered, each with how long it has been silent.",
        "DeviceList",
        LIST_ERRORS,
        (
            _q("warehouse", "only devices of this warehouse"),
            _q("zone", "only devices in this zone"),
            _q("lot", "only devices in the zone of this lot (none for an unknown lot)"),
            Param("state", "query", enum(DEVICE_STATES), "only in this state"),
            *PAGED,
        ),
    ),
    Endpoint(
        "get",
        "/v1/alarms",
        "alarms",
        "Alarms in id order, filtered.",
        "AlarmList",
        LIST_ERRORS,
        (
            Param("state", "query", enum(ALARM_STATES), "open or resolved"),
            _q("lot", "only alarms on this lot"),
            _q("case", "only alarms on this case or supervision"),
            _q("device", "only alarms raised by this device"),
            *PAGED,
        ),
    ),
    Endpoint(
        "get",
        "/v1/blocks",
        "blocks",
        "Block summaries, newest first (only the heights this node holds: from its snapshot base up).",
        "BlockList",
        LIST_ERRORS,
        (BEFORE, *PAGED),
    ),
    Endpoint(
        "get",
        "/v1/txs",
        "txs",
        "Committed transactions, newest first, found through this node's local index (docs/operations.md). "
        "Filters combine; a page may hold fewer than limit items with a next when the walk reached its bound.",
        "TxList",
        LIST_ERRORS,
        (
            _q("party", "the sender or any id-valued body field (lot and alarm included)"),
            _q("case", "transactions naming this case or supervision"),
            _q("lot", "transactions naming this lot"),
            _q("device", "transactions by or naming this device"),
            _q("type", "only this transaction type"),
            BEFORE,
            *PAGED,
        ),
    ),
    Endpoint(
        "get",
        "/v1/lots/{id}/history",
        "lot_history",
        "A lot's quantity held (received less reported outbound) after each transaction that changed it.",
        "LotHistory",
        (400, 404),
        (_id("lot"),),
    ),
    Endpoint(
        "get",
        "/v1/reports",
        "reports",
        "Device reports, newest first. The sealed payload (data) is opened only for this node's own member, "
        "when its operator configured the member's key (report_key_file) and the member is a recipient.",
        "ReportList",
        LIST_ERRORS,
        (_q("lot", "reports on this lot"), _q("device", "reports of this device"), BEFORE, *PAGED),
    ),
    Endpoint(
        "get",
        "/v1/validators/health",
        "validators_health",
        "The validators in force: connected to this node, and the last height each signed (recent certificates).",
        "ValidatorHealth",
        (400,),
    ),
    Endpoint(
        "post",
        "/v1/audit",
        "audit",
        "Replay this node's chain from genesis with the checks of godown audit replay and answer the report. "
        "One at a time: 409 audit_running while one runs; 422 bad_config on a node restored from a snapshot.",
        "AuditReport",
        (400, 409, 422),
    ),
)

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("get", "/v1/health", "health", "Liveness: 200 while the node's event loop answers.", "Health", ()),
    Endpoint(
        "get",
        "/v1/ready",
        "ready",
        "Readiness: 200 when caught up with its peers, reaching a quorum of validators (itself included), and "
        "in the validator set or scheduled to join it; else 503 with code not_ready and the reasons.",
        "Ready",
        (503,),
    ),
    Endpoint(
        "get", "/v1/status", "status", "Chain id, node id, height, head hash, view, validators, peers.", "Status", ()
    ),
    Endpoint(
        "post",
        "/v1/txs",
        "submit",
        "Submit one signed transaction, a list of them (or {txs: [...]}), as JSON or canonical msgpack. A single "
        "transaction answers 200 Submitted or an error; a list answers 200 with a result per item (each refused "
        "item carries its code; the request fails as a whole only if the body cannot be read).",
        "",
        (400, 401, 403, 409, 413, 415, 422, 429, 507),
        (
            Param(
                "wait_ms",
                "query",
                described({**INT, "maximum": 60_000}, "capped at 60000"),
                "Wait up to this long for the admitted transactions to commit (code committed, with height, "
                "index and result); those not committed by then stay accepted.",
            ),
        ),
    ),
    Endpoint(
        "get",
        "/v1/txs/{tx_id}",
        "get_tx",
        "A transaction, committed (block height, index, result code) or pending.",
        "TxStatus",
        (400, 404),
        (Param("tx_id", "path", {"type": "string", "pattern": "^[0-9a-f]{64}$"}, "the transaction id, hex"),),
    ),
    Endpoint(
        "get",
        "/v1/blocks/{height}",
        "get_block",
        "A block with its commit certificate and raw bytes. A height at or below the node's base (it was "
        "restored from a snapshot there, or prunes history: history.keep_blocks) is 410 history_unavailable.",
        "Block",
        (400, 404, 410),
        (Param("height", "path", {"type": "string", "pattern": "^([0-9]+|latest)$"}, "a height or latest"),),
    ),
    Endpoint(
        "get",
        "/v1/state/{key}",
        "get_state",
        "A state entry with a Merkle proof against the state root after the head; the next block's header "
        "certifies that root. Only the latest state is kept.",
        "StateEntry",
        (400, 404, 413),
        (
            Param("key", "path", {"type": "string"}, "the key as utf-8, or 0x then hex; at most 512 bytes (else 413)"),
            Param("height", "query", INT, "answer only if this is the head's height, else 404 not_found"),
        ),
    ),
    Endpoint(
        "get",
        "/v1/cases/{id}",
        "get_case",
        "A financing case or a plain supervision.",
        "CaseOrSupervision",
        (400, 404),
        (_id("case or supervision"),),
    ),
    Endpoint("get", "/v1/lots/{id}", "get_lot", "A lot (warehouse receipt).", "Lot", (400, 404), (_id("lot"),)),
    Endpoint("get", "/v1/devices/{id}", "get_device", "A monitoring device.", "Device", (400, 404), (_id("device"),)),
    Endpoint(
        "get", "/v1/alarms/{id}", "get_alarm", "An alarm raised by the contracts.", "Alarm", (400, 404), (_id("alarm"),)
    ),
    Endpoint("get", "/v1/members", "members", "Members with roles, public keys and ratings.", "Members", ()),
    Endpoint(
        "get",
        "/v1/validators",
        "validators",
        "The validator set in force and an approved change with its effective height.",
        "Validators",
        (),
    ),
    Endpoint(
        "get",
        "/v1/validators/changes",
        "validator_changes",
        "Every validator-set change this node executed, each with the scheduled set's state entry and Merkle "
        "proof at its approving height h, against the state root the header of h+1 carries (certified by the set "
        "then in force): what a light client follows from genesis (docs/protocol.md §13).",
        "ValidatorChanges",
        (),
    ),
    Endpoint(
        "get",
        "/v1/proposals",
        "proposals",
        "Governance proposals in id order.",
        "Proposals",
        (400,),
        (
            Param("state", "query", enum(PROPOSAL_STATES), "only proposals in this state"),
            Param(
                "limit",
                "query",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                "at most this many",
            ),
        ),
    ),
    Endpoint(
        "get",
        "/v1/proposals/{id}",
        "get_proposal",
        "A governance proposal with its votes, tally and result.",
        "Proposal",
        (400, 404),
        (_id("proposal"),),
    ),
    Endpoint(
        "get", "/v1/genesis", "genesis", "The genesis document (auditors should pin their own copy).", "Genesis", ()
    ),
    Endpoint(
        "get",
        "/v1/accounts/{id}",
        "account",
        "A sender's next nonce (committed, and counting pending transactions).",
        "Account",
        (400,),
        (_id("member or device"),),
    ),
    Endpoint(
        "get",
        "/v1/events",
        "events",
        "WebSocket (GET with Upgrade: websocket) of committed blocks, transaction results and contract events, "
        "each text message one Event; a plain GET is refused with 400. A browser, which cannot set the "
        "Authorization header, offers the subprotocol bearer.<token> instead (echoed back). A from_height "
        "further back than the node replays (10,000 heights) or keeps is refused with 410 history_unavailable.",
        "",
        (400, 410),
        (
            Param("kinds", "query", {"type": "string"}, KINDS),
            Param("from_height", "query", INT, FROM_HEIGHT),
            Param("match", "query", {"type": "object", "additionalProperties": {"type": "string"}}, MATCH),
        ),
    ),
    *LIST_ENDPOINTS,
    Endpoint("get", "/metrics", "metrics", "Prometheus text format.", "", ()),
    Endpoint("get", "/openapi.json", "openapi", "This document.", "", ()),
    Endpoint("get", "/docs/transactions", "tx_docs", "HTML page of every transaction type and its body.", "", ()),
)
