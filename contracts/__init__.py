"""Deterministic contracts for the financing lifecycle (DESIGN §5).

The node calls `genesis_state`, `admit`, `next_nonce`, `execute_block`,
`validator_schedule` (after each block: the current validators and a pending
change with the height after which it governs) and the `view_*` queries;
everything else is internal. Contracts see only the state
reader and the block context: no clock, no randomness, no I/O.
"""

from contracts.context import BlockContext, BlockOutcome, Event, alarm_id_for_tx
from contracts.executor import NONCE_WINDOW, Verify, admit, execute_block, next_nonce
from contracts.members import genesis_state, sender_key
from contracts.rotation import rotate_key_message
from contracts.state import DictState, StateReader, state_key_for
from contracts.validators import (
    SCHEDULED_SET_KEY,
    ScheduledSet,
    governing_validators,
    validator_history,
    validator_schedule,
)
from contracts.views import (
    list_proposals,
    view_alarm,
    view_case,
    view_device,
    view_lot,
    view_members,
    view_proposal,
    view_rating,
)

__all__ = [
    "BlockContext",
    "BlockOutcome",
    "DictState",
    "Event",
    "StateReader",
    "Verify",
    "NONCE_WINDOW",
    "SCHEDULED_SET_KEY",
    "ScheduledSet",
    "admit",
    "alarm_id_for_tx",
    "execute_block",
    "genesis_state",
    "list_proposals",
    "rotate_key_message",
    "sender_key",
    "next_nonce",
    "state_key_for",
    "governing_validators",
    "validator_history",
    "validator_schedule",
    "view_alarm",
    "view_case",
    "view_device",
    "view_lot",
    "view_members",
    "view_proposal",
    "view_rating",
]
