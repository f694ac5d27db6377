"""Folding: stored records and index rows into the public model, free of IO.

On load a backend turns the live rows into entries (`entries_from_rows`) and
`fold_session` makes the `SessionData`; `walk_path` and `session_info` answer
the path and index reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..model import UNSET, Change, Entry, JSONObject, RawJSON, SessionData, SessionInfo, UnsetType
from .branch import cycle_error
from .codec import (
    STORED_DECODE_ERRORS,
    decode_stored,
    object_decode,
    raw_object,
    stored_damage,
)
from .records import LogSlice, Record, SessionState, branch_records

__all__ = [
    "changes_from_slice",
    "entries_from_records",
    "entries_from_rows",
    "fold_changes",
    "fold_session",
    "record_to_entry",
    "session_info",
    "tail_entries",
    "walk_path",
]


def record_to_entry(record: Record, *, raw: bool, session_id: str | None = None) -> Entry:
    """The public `Entry` a record stands for.

    Raises:
        CorruptionError: its stored payload is not a JSON object.
    """
    return Entry(
        record.entry_id,
        record.parent_id,
        record.kind,
        record.timestamp,
        decode_stored(
            record.payload, raw=raw, what="payload", session_id=session_id, entry_id=record.entry_id
        ),
    )


def entries_from_rows(rows: Iterable[Sequence[Any]], *, raw: bool) -> list[Entry]:
    """Entries from ``(entry_id, parent_id, kind, timestamp, payload bytes)`` rows.

    Raises:
        CorruptionError: a stored payload is not a JSON object (naming its entry;
            the store fills in the session).
    """
    # The hot loop of every load: one decode per row, no per-row branching. A raw
    # load checks the bytes too: it must not hand out damaged ones (a dump would
    # copy them into a backup).
    entry_id = None
    try:
        if raw:
            return [
                Entry((entry_id := i), parent, kind, ts, raw_object(payload))
                for i, parent, kind, ts, payload in rows
            ]
        return [
            Entry((entry_id := i), parent, kind, ts, object_decode(payload))
            for i, parent, kind, ts, payload in rows
        ]
    except STORED_DECODE_ERRORS:
        pass
    raise stored_damage("payload", entry_id=entry_id)


def entries_from_records(records: Iterable[Record], *, raw: bool) -> list[Entry]:
    """The entries that live records (in `pos` order) stand for."""
    rows = ((r.entry_id, r.parent_id, r.kind, r.timestamp, r.payload) for r in records)
    return entries_from_rows(rows, raw=raw)


def fold_session(
    state: SessionState,
    entries: list[Entry],
    *,
    leaf_id: str | None,
    metadata: bytes,
    version: int,
    updated_at: datetime,
    raw: bool,
) -> SessionData:
    """A session's live entries (in `pos` order) and its version's leaf and metadata,
    as the `SessionData` a load returns."""
    return SessionData(
        entries=entries,
        leaf_id=leaf_id,
        metadata=decode_stored(metadata, raw=raw, what="metadata", session_id=state.session_id),
        version=version,
        created_at=state.created_at,
        updated_at=updated_at,
        parent_session_id=state.parent_session_id,
        forked_from_entry_id=state.forked_from_entry_id,
    )


def walk_path(session_id: str, live: Sequence[Record], leaf_id: str | None) -> list[Entry]:
    """The branch from its root to `leaf_id`; a parent that is not live ends the walk.

    Raises:
        InvalidLeafError: `leaf_id` is not live.
        CorruptionError: the parent links form a cycle.
    """
    if leaf_id is None:
        return []
    branch = branch_records(session_id, live, leaf_id)
    return [record_to_entry(record, raw=False, session_id=session_id) for record in branch]


def tail_entries(session_id: str, walked: Sequence[Record]) -> list[Entry]:
    """The entries of a walk up from a leaf (leaf first), root first.

    Raises:
        CorruptionError: the walk met an entry twice: the parent links form a cycle.
    """
    seen: set[str] = set()
    for record in walked:
        if record.entry_id in seen:
            raise cycle_error(session_id, record.entry_id)
        seen.add(record.entry_id)
    return [
        record_to_entry(record, raw=False, session_id=session_id) for record in reversed(walked)
    ]


def session_info(state: SessionState) -> SessionInfo:
    """The public index record of a session."""
    return SessionInfo(
        session_id=state.session_id,
        version=state.version,
        entry_count=state.entry_count,
        removed_count=state.removed_count,
        bytes=state.bytes,
        created_at=state.created_at,
        updated_at=state.updated_at,
        parent_session_id=state.parent_session_id,
        forked_from_entry_id=state.forked_from_entry_id,
        leaf_id=state.leaf_id,
    )


# -- the change feed ------------------------------------------------------------


def changes_from_slice(session_id: str, log: LogSlice, *, raw: bool) -> list[Change]:
    """One `Change` per version row of `log`, oldest first.

    A record added in a version with ``pos != seq`` supersedes an entry in
    place (`replaced`); one with ``pos == seq`` went to the end (`appended`:
    new, revived or moved). An id removed in a version and not added again in
    it left the session (`removed_ids`).

    Raises:
        CorruptionError: a stored payload or metadata is not a JSON object.
    """
    added: dict[int, list[Record]] = {}
    for record in log.added:
        added.setdefault(record.added_in_version, []).append(record)
    removed: dict[int, list[str]] = {}
    for entry_id, version in log.removed:
        removed.setdefault(version, []).append(entry_id)
    changes = []
    for row in log.versions:
        records = added.get(row.version, [])
        added_ids = {record.entry_id for record in records}
        metadata: JSONObject | RawJSON | UnsetType = UNSET
        if row.metadata is not None:
            metadata = decode_stored(row.metadata, raw=raw, what="metadata", session_id=session_id)
        changes.append(
            Change(
                version=row.version,
                replaced=[
                    record_to_entry(r, raw=raw, session_id=session_id)
                    for r in records
                    if r.pos != r.seq
                ],
                appended=[
                    record_to_entry(r, raw=raw, session_id=session_id)
                    for r in records
                    if r.pos == r.seq
                ],
                removed_ids=[i for i in removed.get(row.version, []) if i not in added_ids],
                leaf_id=row.leaf_id,
                metadata=metadata,
                created_at=row.created_at,
            )
        )
    return changes


def fold_changes(changes: Iterable[Change], *, start: SessionData | None = None) -> SessionData:
    """Fold changes, oldest first, onto `start` (default: nothing, before version 1).

    Folding the changes of versions 1..v from nothing gives the entries, leaf
    and metadata of ``load(at_version=v)``; after a purge, start from
    ``load(at_version=floor)`` and fold the changes after it. `start` is not
    changed. The result's `version` and `updated_at` are the last change's.
    """
    entries: dict[str, Entry] = {}
    leaf_id: str | None = None
    metadata: JSONObject | RawJSON = {}
    version = 0
    updated_at = None
    if start is not None:
        entries = {entry.id: entry for entry in start.entries}
        leaf_id, metadata, version, updated_at = (
            start.leaf_id,
            start.metadata,
            start.version,
            start.updated_at,
        )
    for change in changes:
        for entry in change.replaced:
            entries[entry.id] = entry  # an existing key keeps its place
        for entry_id in change.removed_ids:
            entries.pop(entry_id, None)
        for entry in change.appended:
            entries.pop(entry.id, None)
            entries[entry.id] = entry
        leaf_id = change.leaf_id
        if not isinstance(change.metadata, UnsetType):
            metadata = change.metadata
        version = change.version
        updated_at = change.created_at
    return SessionData(
        entries=list(entries.values()),
        leaf_id=leaf_id,
        metadata=metadata,
        version=version,
        created_at=None if start is None else start.created_at,
        updated_at=updated_at,
        parent_session_id=None if start is None else start.parent_session_id,
        forked_from_entry_id=None if start is None else start.forked_from_entry_id,
    )
