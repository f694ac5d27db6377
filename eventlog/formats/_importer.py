"""The import driver: parse everything into a disk spool, check it, then write.

A file is read record by record into a private temporary SQLite database (the
spool), so memory stays flat whatever the file size. Only when every record
has been read and validated, and the final metadata and every id checked
against the stored session, is anything written to the store; a bad file
therefore raises before the session is touched. The spool also answers "was
this id seen before?" without keeping the ids in memory.

How it writes:

- into an existing session, up to `_ONE_WRITE_BYTES` of entries: one
  `save_delta` (entries, tombstones, leaf and metadata) with the version the
  checks were made on, so it lands whole or not at all, also against the
  store's own checks (an id removed earlier with other content, a leaf that
  would not be live). A concurrent write makes it check and try again;
- into an existing session, more than that: in batches, after the same checks
  except the ones only the store can make (removed ids, their leaf). A
  concurrent writer, or such a removed id, stops it part way; what landed is
  the file's own entries, so importing the file again completes it;
- into a new session: in batches (memory stays flat). A failure deletes the
  session again, unless it changed since the import's last write (another
  client wrote to it): then it is kept, and the error propagates.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Final

from .._core.codec import prepare_delta
from ..errors import ConcurrencyError, EventlogError, IdConflictError
from ..model import Entry, JSONObject, RawJSON, SaveResult, SessionData, SessionDelta
from ..store import Store
from ._entry_checks import max_entry_bytes_of
from ._lines import BadLine, MalformedLineError
from ._payload_keys import as_bytes, as_dict
from ._results import ImportResult, ParsedSession

__all__ = ["Attempt", "Progress", "collect", "discard_new_session", "reported", "run_import"]

Known = Callable[[str], bool]
Attempt = Callable[[Known], "tuple[Entry, bytes] | None"]
"""Reads one record: returns the entry and its validated payload bytes, or `None`."""
Progress = Callable[[int], None]
"""Told how many more entries an import wrote, or an export read, after each step."""

_MAX_BAD_LINES_LISTED: Final = 1000
_ONE_WRITE_BYTES: Final = 64 * 1024 * 1024
"""Entries (ids and payloads) an import into an existing session writes in one transaction."""
_ONE_WRITE_ENTRIES: Final = 100_000
_PLAN_ATTEMPTS: Final = 5
"""Checks and writes an import tries while concurrent writers keep changing the session."""
_NEW_ENTRY_AT: Final = re.compile(r"new_entries\[(\d+)\]")


def reported(result: SaveResult, progress: Progress | None) -> SaveResult:
    """`result`, after telling `progress` how many entries the write stored or found stored."""
    if progress is not None:
        progress(len(result.appended) + len(result.skipped))
    return result


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
        self.bytes = 0

    def known(self, entry_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM spool WHERE id = ?", (entry_id,)).fetchone()
        return row is not None

    def add(self, line: int, entry: Entry, payload: bytes) -> None:
        self._db.execute(
            "INSERT INTO spool (line, id, parent, kind, ts, payload) VALUES (?, ?, ?, ?, ?, ?)",
            (line, entry.id, entry.parent_id, entry.kind, entry.timestamp, payload),
        )
        self.count += 1
        self.bytes += len(payload) + len(entry.id)

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


class _Retry(Exception):
    """A concurrent write moved the session before the import changed anything: check again."""

    def __init__(self, lost: ConcurrencyError) -> None:
        super().__init__()
        self.lost = lost


def run_import(
    store: Store,
    attempts: Iterable[tuple[int, Attempt]],
    finish: Callable[[Known], ParsedSession],
    *,
    path: str,
    session_id: str,
    skip_bad: bool,
    batch_size: int,
    progress: Progress | None = None,
) -> ImportResult:
    """Read every record into the spool, check it against the session, then write it.

    The module docstring says how it writes and what a failure leaves behind;
    `progress` is told the entries each write stored.
    """
    spool = _Spool()
    try:
        skipped, bad_lines = _read_all(
            attempts, spool.add, spool.known, path=path, session_id=session_id, skip_bad=skip_bad
        )
        parsed = _finish(finish, spool.known, path=path, session_id=session_id)
        attempt = 1
        while True:
            try:
                written, final = _check_and_write(
                    store,
                    spool,
                    parsed,
                    path=path,
                    session_id=session_id,
                    batch_size=batch_size,
                    progress=progress,
                )
            except _Retry as retry:
                if attempt == _PLAN_ATTEMPTS:
                    raise retry.lost from None
                attempt += 1
                continue
            return ImportResult(
                session_id=session_id,
                entries=spool.count,
                appended=sum(len(result.appended) for result in written),
                already_stored=sum(len(result.skipped) for result in written),
                tombstoned=len(final.tombstoned),
                skipped_bad=skipped,
                bad_lines=tuple(bad_lines),
                version=final.version,
                leaf_id=parsed.leaf_id,
            )
    finally:
        spool.close()


def _check_and_write(
    store: Store,
    spool: _Spool,
    parsed: ParsedSession,
    *,
    path: str,
    session_id: str,
    batch_size: int,
    progress: Progress | None,
) -> tuple[list[SaveResult], SaveResult]:
    """Decide everything against the stored session, then write: (entry writes, last write)."""
    existing = store.load(session_id, raw=True)
    metadata: JSONObject = parsed.metadata
    removed: list[str] = []
    if existing is not None:
        _check_conflicts(spool, existing, path=path, session_id=session_id)
        if parsed.merge_metadata:
            metadata = {**as_dict(existing.metadata), **parsed.metadata}
        if parsed.authoritative:
            removed = [entry.id for entry in existing.entries if not spool.known(entry.id)]
    # The metadata is written last: checked now, a bad one cannot stop the import part way.
    prepare_delta(
        session_id, SessionDelta(metadata=metadata), max_entry_bytes=max_entry_bytes_of(store)
    )
    final = SessionDelta(removed_entry_ids=removed, leaf_id=parsed.leaf_id, metadata=metadata)
    if existing is None:
        return _write_in_batches(
            store,
            spool,
            final,
            session_id=session_id,
            version=0,
            batch_size=batch_size,
            progress=progress,
        )
    if spool.bytes <= _ONE_WRITE_BYTES and spool.count <= _ONE_WRITE_ENTRIES:
        result = _write_at_once(
            store, spool, final, path=path, session_id=session_id, version=existing.version
        )
        return [result], reported(result, progress)
    return _write_in_batches(
        store,
        spool,
        final,
        session_id=session_id,
        version=existing.version,
        batch_size=batch_size,
        progress=progress,
    )


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


def _write_at_once(
    store: Store, spool: _Spool, final: SessionDelta, *, path: str, session_id: str, version: int
) -> SaveResult:
    """The whole import as one `save_delta` on the version it was checked against."""
    lines: list[int] = []
    entries: list[Entry] = []
    for batch in spool.batches(10_000):
        for line, entry in batch:
            lines.append(line)
            entries.append(entry)
    delta = SessionDelta(
        new_entries=entries,
        removed_entry_ids=final.removed_entry_ids,
        leaf_id=final.leaf_id,
        metadata=final.metadata,
    )
    try:
        return store.save_delta(session_id, delta, expected_version=version)
    except ConcurrencyError as lost:
        raise _Retry(lost) from None
    except IdConflictError as conflict:
        # Only the store sees ids it holds no longer live (removed earlier): name the file's line.
        found = _NEW_ENTRY_AT.fullmatch(conflict.where or "")
        if found is None:
            raise
        raise IdConflictError(
            conflict.message,
            session_id=session_id,
            entry_id=conflict.entry_id,
            where=f"{path}:{lines[int(found.group(1))]}",
        ) from None


def _write_in_batches(
    store: Store,
    spool: _Spool,
    final: SessionDelta,
    *,
    session_id: str,
    version: int,
    batch_size: int,
    progress: Progress | None,
) -> tuple[list[SaveResult], SaveResult]:
    """Entries in batches of `batch_size`, then `final`, chained on `version` (0: a new session)."""
    expected = version
    written: list[SaveResult] = []
    try:
        for batch in spool.batches(batch_size):
            result = store.save_delta(
                session_id,
                SessionDelta(new_entries=[entry for _, entry in batch]),
                expected_version=expected,
            )
            written.append(reported(result, progress))
            expected = result.version
        return written, reported(
            store.save_delta(session_id, final, expected_version=expected), progress
        )
    except ConcurrencyError as lost:
        if expected == version:
            raise _Retry(lost) from None
        _after_partial_write(store, session_id, lost, created=version == 0, version=expected)
        raise
    except BaseException as error:
        if expected != version:
            _after_partial_write(store, session_id, error, created=version == 0, version=expected)
        raise


def _after_partial_write(
    store: Store, session_id: str, error: BaseException, *, created: bool, version: int
) -> None:
    """Undo a new session's partial import if nobody else wrote to it; else say what is left."""
    if created:
        discard_new_session(store, session_id, version, error)
        return
    error.add_note(
        "The import stopped part way; the entries written are the file's own, "
        "so importing the file again completes it."
    )


def discard_new_session(store: Store, session_id: str, version: int, error: BaseException) -> None:
    """Delete a session a failed import created, only if it is still at the import's `version`.

    Another client's write since then keeps the session (and what it wrote);
    `error`, the import's own, gets a note saying so and is the one raised.
    """
    try:
        store.delete(session_id, expected_version=version)
    except ConcurrencyError:
        error.add_note(
            "The half-imported session was kept: it changed after the import's last "
            "write (another client wrote to it)."
        )
    except EventlogError:
        error.add_note("The half-imported session could not be deleted.")
