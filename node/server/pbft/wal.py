"""The consensus write-ahead log as the driver uses it: records durable before
anything that depends on them is sent, and compacted every few stable
checkpoints so that a restart reads only what it still needs.

A record that cannot be written (disk full, I/O error) ends the process
(`stop_for_storage_fault`): the driver would otherwise go on to send what depends on
it, and the replica would believe in a vote its disk does not hold."""

from __future__ import annotations

from consensus.records import compact
from node.server.ledger import stop_for_storage_fault
from storage.chain import ChainStore
from storage.kv import WriteFailed

WAL_COMPACT_EVERY = 4  # stable checkpoints between write-ahead log compactions


class WriteAheadLog:
    """Appends, syncs and compacts the replica's write-ahead records."""

    def __init__(self, store: ChainStore) -> None:
        self.store = store
        self.unsynced = False  # write-ahead records appended without a sync since
        self._stable_seen = 0

    def persist(self, records: list[bytes], sync: bool) -> None:
        """Write-ahead records are durable before anything that depends on them is sent:
        synced at once if this step sends, else left for the next synced write (the
        next send's, or the block commit that usually follows), saving an fsync per
        round. Nothing unsent is lost by a crash that forgets them."""
        try:
            self.store.wal_append_many(records, sync=sync)
        except WriteFailed as fault:
            stop_for_storage_fault(fault, "writing consensus write-ahead records", records=len(records))
        self.unsynced = not sync

    def synced_by_commit(self) -> None:
        """A block's commit was one synced write to the same store."""
        self.unsynced = False

    def on_stable_checkpoint(self) -> None:
        self._stable_seen += 1
        if self._stable_seen % WAL_COMPACT_EVERY == 0:
            self.compact()

    def compact(self) -> None:
        """Rewrite the write-ahead log with what a restart still needs (appended and
        synced first, the old records dropped after)."""
        store = self.store
        entries = store.wal_entries()
        if not entries:
            return
        kept = compact([raw for _, raw in entries])
        try:
            store.wal_append_many(kept)
            store.wal_truncate_below(entries[-1][0] + 1)
        except WriteFailed as fault:
            stop_for_storage_fault(fault, "compacting the consensus write-ahead log")
