"""`Transaction`: the storage calls a sync backend answers, no decisions.

GENERATED from `_core/transaction_async.py` by `python -m eventlog._async_to_sync`:
do not edit by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..model import Entry
from .planning import PurgePlan, WritePlan
from .records import BranchWalk, LogSlice, Record, SessionState, StateQuery
from .storage_requests import RowOpener, VersionRow

__all__ = ["Transaction"]


class Transaction(Protocol):
    """Storage reads and writes of one backend transaction; no decisions.

    Each method is answered for one request of `storage_requests`.
    """

    def state(self, session_id: str) -> SessionState | None:
        """The session's index row; in a write transaction, the row is locked."""
        ...

    def latest_records(self, session_id: str, entry_ids: Sequence[str]) -> dict[str, Record]:
        """The newest record of each id that has one (live or not); payloads may be empty."""
        ...

    def state_and_latest(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> tuple[SessionState | None, dict[str, Record]]:
        """`state` and `latest_records` together (one round trip where the backend can)."""
        ...

    def live_records(self, session_id: str, *, payloads: bool) -> list[Record]:
        """The live records in `seq` order; with `payloads=False` payloads may be empty."""
        ...

    def live_entries(
        self, session_id: str, *, raw: bool, opener: RowOpener | None = None
    ) -> list[Entry]:
        """The live entries in `pos` order, payloads decoded (`RawJSON` if `raw`);
        `opener` first opens the rows' sealed payloads (`_core.sealing`)."""
        ...

    def records_at(self, session_id: str, version: int) -> list[Record]:
        """The records live right after `version`, in `seq` order."""
        ...

    def version_row(self, session_id: str, version: int) -> VersionRow | None:
        """Leaf, metadata and write time as of `version`."""
        ...

    def apply(self, plan: WritePlan) -> None:
        """Write a changed plan (see `WritePlan` for the order)."""
        ...

    def delete(self, session_id: str) -> bool:
        """Remove every row of the session."""
        ...

    def purge(self, plan: PurgePlan) -> int:
        """Apply a purge plan; return the records dropped."""
        ...

    def set_data_key(self, session_id: str, stored: bytes, data_key: bytes) -> bool:
        """Replace the session's wrapped data key if it is still `stored`; whether it was."""
        ...

    def list_states(self, query: StateQuery) -> list[SessionState]:
        """Index rows in session-id order, after the id `after`."""
        ...

    # -- reads for frameworks ---------------------------------------------------

    def live_record(self, session_id: str, entry_id: str) -> Record | None:
        """The live record of `entry_id`, with its payload, or None."""
        ...

    def branch_tail(self, session_id: str, leaf_id: str | None, limit: int) -> BranchWalk:
        """Walk up from `leaf_id` (None: the session's leaf), at most `limit` live records."""
        ...

    def scan_records(
        self, session_id: str, id_prefix: str, after_id: str | None, limit: int | None
    ) -> list[Record]:
        """Live records whose id starts with `id_prefix` and is above `after_id`, in id order."""

    # -- the change feed ----------------------------------------------------------

    def log_between(
        self, session_id: str, after: int, until: int, *, next_seq: int
    ) -> LogSlice:
        """The records added and removed in versions ``(after, until]``, and their
        version rows; `next_seq` is the session's, read in this transaction.
        Cost O(what it returns), plus O(log n) index probes."""
        ...
