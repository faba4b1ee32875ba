"""PBFT consensus as a pure, deterministic state machine (DESIGN §4).

The node drives one `Replica`: it feeds it messages (`step`), ticks (`tick`),
payloads to order when it is the primary (`propose`), execution results
(`on_executed`) and fetched blocks (`on_fetched`), and performs the returned
`Ready.actions` in order: persist, then send, then execute, then fetch. The
application's validator-set changes reach it through `schedule_validators`
(`consensus.membership`). The same replica runs inside the seeded fault
simulator in `consensus.sim`.
"""

from consensus.actions import Action, Broadcast, Execute, FetchBlocks, Persist, Ready, Send
from consensus.config import ReplicaConfig
from consensus.membership import ValidatorChange, after_height_for
from consensus.messages import Message, decode_message, encode_message
from consensus.replica import Replica
from consensus.signing import Ed25519Signer, Ed25519Verifier, FakeSigner, FakeVerifier, KeyRing, Signer, Verifier
from consensus.types import Rejection

__all__ = [
    "Action",
    "Broadcast",
    "Ed25519Signer",
    "Ed25519Verifier",
    "Execute",
    "FakeSigner",
    "FakeVerifier",
    "FetchBlocks",
    "KeyRing",
    "Message",
    "Persist",
    "Ready",
    "Rejection",
    "Replica",
    "ReplicaConfig",
    "Send",
    "Signer",
    "ValidatorChange",
    "Verifier",
    "after_height_for",
    "decode_message",
    "encode_message",
]
