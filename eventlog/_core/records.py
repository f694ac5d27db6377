"""The stored shapes the core reasons about: a log record, a session's index row.

Planning reads them to decide a write, folding turns them into the public
model, and `branch_records` walks them from a leaf to its root.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime

import msgspec

from ..errors import InvalidLeafError
from .branch import branch_to, cycle_error

__all__ = [
    "BranchWalk",
    "LogSlice",
    "Record",
    "SessionState",
    "StateQuery",
    "VersionChange",
    "branch_records",
]


class Record(msgspec.Struct, frozen=True):
    """One row of the append-only log.

    A record is only ever inserted, or stamped once with `removed_in_version`.
    `seq` is the record's place in the log; `pos` is its entry's place in the
    session: a new record's own seq, or, for a record that supersedes a changed
    entry, the pos of the record it replaces, so the entry keeps its place.
    Live records are read in `pos` order. Reads that only compare content may
    leave `payload` empty.
    """

    seq: int
    pos: int
    entry_id: str
    parent_id: str | None
    kind: str
    timestamp: str | None
    payload: bytes
    digest: bytes
    added_in_version: int
    removed_in_version: int | None = None

    @property
    def live(self) -> bool:
        return self.removed_in_version is None


class SessionState(msgspec.Struct, frozen=True):
    """A session's index row."""

    session_id: str
    version: int
    leaf_id: str | None
    metadata: bytes
    next_seq: int
    entry_count: int
    removed_count: int
    bytes: int
    history_floor: int
    created_at: datetime
    updated_at: datetime
    parent_session_id: str | None = None
    forked_from_entry_id: str | None = None
    data_key: builtins.bytes | None = None
    """A sealed session's data key, wrapped (`_core.sealing`); None: a plain session."""


class StateQuery(msgspec.Struct, frozen=True):
    """Which index rows `list_sessions` asks a backend for, in session-id order."""

    prefix: str | None
    updated_before: datetime | None
    after: str | None
    """Only ids above this one (the page's cursor)."""
    limit: int


class BranchWalk(msgspec.Struct, frozen=True):
    """A walk up a branch: whether the session exists, and the live records met.

    `records` starts at the leaf and follows parent links while the parent is
    live, at most as many as asked; empty when the leaf is not live (or the
    session has none).
    """

    exists: bool
    records: list[Record]


def branch_records(session_id: str, live: Sequence[Record], leaf_id: str) -> list[Record]:
    """The live records from the root to `leaf_id` (a parent that is not live ends it).

    Raises:
        InvalidLeafError: `leaf_id` is not live.
        CorruptionError: the parent links form a cycle.
    """
    by_id = {record.entry_id: record for record in live}
    if leaf_id not in by_id:
        raise InvalidLeafError(
            "the leaf is not a live entry", session_id=session_id, entry_id=leaf_id, where="leaf_id"
        )
    return branch_to(by_id, leaf_id, on_cycle=lambda entry_id: cycle_error(session_id, entry_id))


# -- the change feed ------------------------------------------------------------


class VersionChange(msgspec.Struct, frozen=True):
    """One version row as written: `metadata` is None where the version kept it."""

    version: int
    leaf_id: str | None
    metadata: bytes | None
    created_at: datetime


class LogSlice(msgspec.Struct, frozen=True):
    """What the log holds for the versions in ``(after, until]``, as `changes` folds it.

    Attributes:
        added: the records added in those versions, in `seq` order, with payloads.
        removed: ``(entry_id, removed_in_version)`` of the records removed in them.
        versions: their version rows, oldest first.
    """

    added: list[Record]
    removed: list[tuple[str, int]]
    versions: list[VersionChange]
