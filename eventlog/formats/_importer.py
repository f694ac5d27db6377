"""The import driver: parse everything into a disk spool, then write in batches.

A file is read record by record into a private temporary SQLite database (the
spool), so memory stays flat whatever the file size. Only when every record
has been read and validated is anything written to the store; a malformed
record therefore raises before the session is touched. The spool also answers
"was this id seen before?" without keeping the ids in memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from ..errors import IdConflictError
from ..model import Entry, RawJSON, SessionData, SessionDelta, UnsetType
from ..store import Store
from ._common import BadLine, ImportResult, MalformedLineError, ParsedSession, as_bytes, as_dict

__all__ = ["Attempt", "collect", "run_import"]

Known = Callable[[str], bool]
Attempt = Callable[[Known], "tuple[Entry, bytes] | None"]
"""Reads one record: returns the entry and its validated payload bytes, or `None`."""

_MAX_BAD_LINES_LISTED: Final = 1000


class _Spool:
    """Entries read so far, on disk, in file order, with an index on their ids."""

    def __init__(self) -> None:
        # "" opens a private temporary on-disk database, deleted on close.
        self._db = sqlite3.connect("", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute(
            "CREATE TABLE spool (seq INTEGER PRIMARY KEY, line INTEGER NOT NULL, "
            "id TEXT NOT NULL UNIQUE, parent TEXT, kind TEXT NOT NULL, ts TEXT, payload BLOB)"
        )
        self._db.execute("BEGIN")
        self.count = 0

    def known(self, entry_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM spool WHERE id = ?", (entry_id,)).fetchone()
        return row is not None

    def add(self, line: int, entry: Entry, payload: bytes) -> None:
        self._db.execute(
            "INSERT INTO spool (line, id, parent, kind, ts, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (line, entry.id, entry.parent_id, entry.kind, entry.timestamp, payload),
        )
        self.count += 1

    def batches(self, size: int) -> Iterator[list[tuple[int, Entry]]]:
        cursor = self._db.execute(
            "SELECT line, id, parent, kind, ts, payload FROM spool ORDER BY seq"
        )
        while rows := cursor.fetchmany(size):
            yield [
                (line, Entry(entry_id, parent, kind, ts, RawJSON(payload)))
                for line, entry_id, parent, kind, ts, payload in rows
            ]

    def close(self) -> None:
        self._db.close()


def _read_all(
    attempts: Iterable[tuple[int, Attempt]],
    add: Callable[[int, Entry, bytes], None],
    known: Known,
    *,
    path: str,
    session_id: str,
    skip_bad: bool,
) -> tuple[int, list[int]]:
    """Feed every record; return the number of bad records skipped and their line numbers."""
    skipped = 0
    bad_lines: list[int] = []
    for line, attempt in attempts:
        try:
            read = attempt(known)
        except BadLine as bad:
            if not skip_bad:
                raise MalformedLineError(
                    f"malformed record: {bad.reason}",
                    path=path,
                    line=line,
                    session_id=session_id,
                    entry_id=bad.entry_id,
                ) from None
            skipped += 1
            if len(bad_lines) < _MAX_BAD_LINES_LISTED:
                bad_lines.append(line)
            continue
        if read is not None:
            add(line, *read)
    return skipped, bad_lines


def _finish(
    finish: Callable[[Known], ParsedSession], known: Known, *, path: str, session_id: str
) -> ParsedSession:
    try:
        return finish(known)
    except BadLine as bad:
        raise MalformedLineError(
            f"inconsistent file: {bad.reason}", path=path, line=0, session_id=session_id
        ) from None


def _with_payload(entry: Entry, payload: bytes, *, raw: bool) -> Entry:
    """The entry with its payload as the validated bytes (or decoded from them)."""
    value = RawJSON(payload) if raw else as_dict(RawJSON(payload))
    return Entry(entry.id, entry.parent_id, entry.kind, entry.timestamp, value)


def collect(
    attempts: Iterable[tuple[int, Attempt]],
    finish: Callable[[Known], ParsedSession],
    *,
    path: str,
    session_id: str,
    skip_bad: bool = False,
    raw: bool = False,
) -> SessionData:
    """Read a whole file into memory as `SessionData` (for `read_session`)."""
    entries: list[Entry] = []
    ids: set[str] = set()

    def add(line: int, entry: Entry, payload: bytes) -> None:
        ids.add(entry.id)
        entries.append(_with_payload(entry, payload, raw=raw))

    _read_all(attempts, add, ids.__contains__, path=path, session_id=session_id, skip_bad=skip_bad)
    parsed = _finish(finish, ids.__contains__, path=path, session_id=session_id)
    metadata = RawJSON(as_bytes(parsed.metadata)) if raw else parsed.metadata
    return SessionData(entries=entries, leaf_id=parsed.leaf_id, metadata=metadata)


def run_import(
    store: Store,
    attempts: Iterable[tuple[int, Attempt]],
    finish: Callable[[Known], ParsedSession],
    *,
    path: str,
    session_id: str,
    skip_bad: bool,
    batch_size: int,
) -> ImportResult:
    """Read every record into the spool, then write the session in batches.

    A new session that fails half way through the writes is deleted again, so
    an import either lands whole or leaves nothing.
    """
    spool = _Spool()
    try:
        skipped, bad_lines = _read_all(
            attempts, spool.add, spool.known, path=path, session_id=session_id, skip_bad=skip_bad
        )
        parsed = _finish(finish, spool.known, path=path, session_id=session_id)
        existing = store.load(session_id, raw=True)
        if existing is not None:
            _check_conflicts(spool, existing, path=path, session_id=session_id)
        return _write(
            store,
            spool,
            parsed,
            existing,
            session_id=session_id,
            batch_size=batch_size,
            skipped=skipped,
            bad_lines=bad_lines,
        )
    finally:
        spool.close()


def _check_conflicts(spool: _Spool, existing: SessionData, *, path: str, session_id: str) -> None:
    """Refuse, before any write, an entry the session holds live with other content."""
    stored = {
        entry.id: (entry.parent_id, entry.kind, entry.timestamp, as_bytes(entry.payload))
        for entry in existing.entries
    }
    for batch in spool.batches(500):
        for line, entry in batch:
            held = stored.get(entry.id)
            if held is not None and held != (
                entry.parent_id,
                entry.kind,
                entry.timestamp,
                as_bytes(entry.payload),
            ):
                raise IdConflictError(
                    "the session already holds this id with other content",
                    session_id=session_id,
                    entry_id=entry.id,
                    where=f"{path}:{line}",
                )


def _write(
    store: Store,
    spool: _Spool,
    parsed: ParsedSession,
    existing: SessionData | None,
    *,
    session_id: str,
    batch_size: int,
    skipped: int,
    bad_lines: list[int],
) -> ImportResult:
    created = existing is None
    expected: int | None = 0 if created else None
    appended = already = 0
    try:
        for batch in spool.batches(batch_size):
            result = store.save_delta(
                session_id,
                SessionDelta(new_entries=[entry for _, entry in batch]),
                expected_version=expected,
            )
            appended += len(result.appended)
            already += len(result.skipped)
            if created:
                expected = result.version
        metadata: dict[str, object] | UnsetType = parsed.metadata
        removed: list[str] = []
        if existing is not None:
            if parsed.merge_metadata:
                metadata = {**as_dict(existing.metadata), **parsed.metadata}
            if parsed.authoritative:
                removed = [entry.id for entry in existing.entries if not spool.known(entry.id)]
        final = store.save_delta(
            session_id,
            SessionDelta(removed_entry_ids=removed, leaf_id=parsed.leaf_id, metadata=metadata),
            expected_version=expected,
        )
    except BaseException:
        if created:
            store.delete(session_id)
        raise
    return ImportResult(
        session_id=session_id,
        entries=spool.count,
        appended=appended,
        already_stored=already,
        tombstoned=len(final.tombstoned),
        skipped_bad=skipped,
        bad_lines=tuple(bad_lines),
        version=final.version,
        leaf_id=parsed.leaf_id,
    )
