"""Errors are values with stable codes that RPC, CLI and tests share.

`Code` lists every code; `HTTP_STATUS` says how the RPC answers each. Deterministic
rejections of a transaction (`Rejected`) are kept apart from node faults
(`NodeFault`), as Sawtooth keeps InvalidTransaction apart from InternalError:
a node fault is never a reason to mark a transaction invalid.
"""

from __future__ import annotations

from enum import Enum


class Code(str, Enum):
    """Stable error and result codes. The value is what clients see."""

    OK = "ok"
    # decoding and admission
    MALFORMED = "malformed"
    OVERSIZE = "oversize"
    BAD_SIGNATURE = "bad_signature"
    WRONG_CHAIN = "wrong_chain"
    UNKNOWN_SENDER = "unknown_sender"
    FORBIDDEN_ROLE = "forbidden_role"
    BAD_NONCE = "bad_nonce"
    EXPIRED = "expired"
    UNKNOWN_TX_TYPE = "unknown_tx_type"
    BAD_BODY = "bad_body"
    MEMPOOL_FULL = "mempool_full"
    DUPLICATE = "duplicate"
    # members and ratings
    UNKNOWN_MEMBER = "unknown_member"
    MEMBER_EXISTS = "member_exists"
    VALIDATOR_EXISTS = "validator_exists"
    BAD_CARD = "bad_card"
    RATING_TOO_LOW = "rating_too_low"
    RATING_MISSING = "rating_missing"
    # devices
    UNKNOWN_DEVICE = "unknown_device"
    DEVICE_EXISTS = "device_exists"
    DEVICE_NOT_ACCEPTED = "device_not_accepted"
    DEVICE_WRONG_STATE = "device_wrong_state"
    DEVICE_WRONG_WAREHOUSE = "device_wrong_warehouse"
    BAD_SEQUENCE = "bad_sequence"
    MISSING_RECIPIENT = "missing_recipient"
    DEVICES_NOT_ACCEPTED = "devices_not_accepted"
    # lots and cases
    UNKNOWN_LOT = "unknown_lot"
    LOT_EXISTS = "lot_exists"
    LOT_ALREADY_PLEDGED = "lot_already_pledged"
    LOT_NOT_PLEDGED = "lot_not_pledged"
    LOT_NOT_INTACT = "lot_not_intact"
    NO_INBOUND_REPORT = "no_inbound_report"
    UNKNOWN_CASE = "unknown_case"
    CASE_EXISTS = "case_exists"
    CASE_WRONG_STATE = "case_wrong_state"
    NOT_A_PARTY = "not_a_party"
    CONSENT_MISSING = "consent_missing"
    OPEN_ALARM = "open_alarm"
    RELEASE_EXCEEDS_REPAID = "release_exceeds_repaid"
    NO_RELEASE_ORDER = "no_release_order"
    OVERPAYMENT = "overpayment"
    NOT_OVERDUE = "not_overdue"
    UNKNOWN_ALARM = "unknown_alarm"
    ALARM_RESOLVED = "alarm_resolved"
    UNKNOWN_SUPERVISION = "unknown_supervision"
    SUPERVISION_WRONG_STATE = "supervision_wrong_state"
    SITE_OCCUPIED = "site_occupied"
    NO_OUTBOUND_REPORT = "no_outbound_report"
    # governance and key rotation
    PROPOSAL_EXISTS = "proposal_exists"
    UNKNOWN_PROPOSAL = "unknown_proposal"
    PROPOSAL_CLOSED = "proposal_closed"
    ALREADY_VOTED = "already_voted"
    BAD_ACTION = "bad_action"
    UNKNOWN_VALIDATOR = "unknown_validator"
    VALIDATOR_CHANGE_PENDING = "validator_change_pending"
    LAST_GOVERNOR = "last_governor"
    LAST_VALIDATOR = "last_validator"
    # RPC and node
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    UNSUPPORTED_MEDIA = "unsupported_media"
    NOT_RECIPIENT = "not_recipient"
    TAMPERED = "tampered"
    BAD_KEY_FILE = "bad_key_file"
    BAD_CONFIG = "bad_config"
    STORE_DAMAGED = "store_damaged"
    DISK_FULL = "disk_full"
    NOT_READY = "not_ready"
    BAD_BLOCK = "bad_block"
    BAD_CERTIFICATE = "bad_certificate"
    UNVERIFIED = "unverified"  # a client could not check an answer against a certified header
    UNAVAILABLE = "unavailable"
    HISTORY_UNAVAILABLE = "history_unavailable"  # a resume point further back than the node keeps
    AUDIT_RUNNING = "audit_running"  # POST /v1/audit while this node's replay is still running
    INTERNAL = "internal"
    # consensus
    WRONG_VIEW = "wrong_view"
    OUT_OF_WINDOW = "out_of_window"
    NOT_PRIMARY = "not_primary"
    EQUIVOCATION = "equivocation"


HTTP_STATUS: dict[Code, int] = {
    Code.MALFORMED: 400,
    Code.BAD_BODY: 422,
    Code.OVERSIZE: 413,
    Code.BAD_SIGNATURE: 401,
    Code.UNAUTHORIZED: 401,
    Code.FORBIDDEN_ROLE: 403,
    Code.NOT_A_PARTY: 403,
    Code.NOT_FOUND: 404,
    Code.BAD_NONCE: 409,
    Code.DUPLICATE: 409,
    Code.MEMPOOL_FULL: 429,
    Code.RATE_LIMITED: 429,
    Code.UNSUPPORTED_MEDIA: 415,
    Code.UNAVAILABLE: 503,
    Code.HISTORY_UNAVAILABLE: 410,
    Code.AUDIT_RUNNING: 409,
    Code.DISK_FULL: 507,
    Code.NOT_READY: 503,
    Code.INTERNAL: 500,
}
"""HTTP status per code; any code not listed is a client error answered with 422."""


VOID_RESULTS: frozenset[str] = frozenset(
    c.value for c in (Code.WRONG_CHAIN, Code.UNKNOWN_SENDER, Code.BAD_SIGNATURE, Code.BAD_NONCE)
)
"""Results of a committed transaction that did not act for its sender: a forged signature,
or a nonce out of turn — what a faulty primary can put in a block. Such a copy stays in
its block with its result, but it is not the transaction's commit: the tx index, the
mempools and waiting clients ignore it, so the sender's real transaction (same id) can
still commit. (A correct primary never proposes one: admission and nonce order keep them out.)"""


def http_status(code: Code) -> int:
    """The RPC status for a code: never 5xx for a client's mistake."""
    return HTTP_STATUS.get(code, 422)


class GodownError(Exception):
    """Root of every error godown raises on purpose; carries a stable code."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


class Rejected(GodownError):
    """A transaction deterministically refused by the rules; every node agrees on it."""


class NodeFault(GodownError):
    """Something wrong with this node (disk, config, peers), not with the input."""
