"""eventlog's own JSONL dump: a lossless backup of one session with its history.

A dump is the session's version history, oldest kept version first:

- line 1, the header: ``{"eventlog_dump": 1, "session_id", "version",
  "first_version", "created_at", "updated_at", "parent_session_id",
  "forked_from_entry_id"}``; ``first_version`` is the oldest version that was
  not purged (1 if none was);
- per version ``v`` from ``first_version`` to ``version``, a version line
  ``{"v", "mode", "leaf_id", "removed", "entries"[, "metadata"]}`` followed by
  ``entries`` entry lines ``{"id", "parent_id", "kind", "timestamp", "payload"}``.

``mode`` is ``"delta"`` when version ``v`` is version ``v-1`` with the ids in
``removed`` tombstoned and the listed entries appended (restored with one
`save_delta`), or ``"snapshot"`` when the listed entries are the whole live
session (restored with one `save`: moves, superseded content and revived ids).
The first kept version is always a snapshot. ``metadata`` is present when it
changed. Payloads and metadata are the exact stored bytes; bytes holding a
line break are written as a JSON string instead (``payload_text``,
``metadata_text``).

Restoring writes version after version into a session that must not exist,
so ``load()`` and ``load(at_version=v)`` give back what they gave for every
``v`` that was not purged. When the first kept version ``k`` is above 1, the
restore writes ``k-1`` placeholder versions (metadata only) and purges them
right after version ``k``, so older versions raise `HistoryPurgedError` as
they did. ``created_at``/``updated_at`` and the fork parent are set by the
store and cannot be restored through the `Store` protocol; the header keeps them
for reference. A failed restore deletes the half-restored session.

Cost: a dump loads every kept version, O(versions x live entries); memory and
restore hold one version's entries at a time (the whole session for a
snapshot version).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Final

import msgspec

from ..errors import ConcurrencyError, HistoryPurgedError, SessionExistsError, SessionNotFoundError
from ..model import UNSET, Entry, RawJSON, SessionData, SessionDelta, UnsetType
from ..store import Store
from ._common import BadLine, MalformedLineError, as_bytes, decode_json, iter_lines

__all__ = [
    "DUMP_FORMAT_VERSION",
    "Restored",
    "dump",
    "restore",
    "session_id_hint",
    "write_snapshot",
]

DUMP_FORMAT_VERSION: Final = 1
_FILLER_KEY: Final = "eventlog.restore_placeholder"


_NO_RAW: Final = msgspec.Raw(b"")
"""An absent raw field (an embedded JSON value is never empty)."""


class _Header(msgspec.Struct, omit_defaults=True):
    eventlog_dump: int
    session_id: str
    version: int
    first_version: int
    created_at: str | None = None
    updated_at: str | None = None
    parent_session_id: str | None = None
    forked_from_entry_id: str | None = None


class _Version(msgspec.Struct, omit_defaults=True):
    v: int
    mode: str
    leaf_id: str | None
    removed: list[str]
    entries: int
    metadata: msgspec.Raw = _NO_RAW
    metadata_text: str | None = None


class _Entry(msgspec.Struct, omit_defaults=True):
    id: str
    parent_id: str | None
    kind: str
    timestamp: str | None
    payload: msgspec.Raw = _NO_RAW
    payload_text: str | None = None


_encoder = msgspec.json.Encoder()
_header_decoder = msgspec.json.Decoder(_Header)
_version_decoder = msgspec.json.Decoder(_Version)
_entry_decoder = msgspec.json.Decoder(_Entry)


def _raw_fields(data: bytes) -> tuple[msgspec.Raw, str | None]:
    """Bytes as an embedded raw value, or as text when a line break would split the line."""
    if b"\n" in data or b"\r" in data:
        return _NO_RAW, data.decode("utf-8")
    return msgspec.Raw(data), None


def _entry_line(entry: Entry) -> bytes:
    raw, text = _raw_fields(as_bytes(entry.payload))
    return _encoder.encode(
        _Entry(entry.id, entry.parent_id, entry.kind, entry.timestamp, raw, text)
    )


def _first_kept_version(store: Store, session_id: str, last: int) -> int:
    low, high = 1, last
    while low < high:
        middle = (low + high) // 2
        try:
            store.load(session_id, at_version=middle, raw=True)
        except HistoryPurgedError:
            low = middle + 1
        else:
            high = middle
    return low


def _is_delta(previous: SessionData, current: SessionData, ever: set[str]) -> bool:
    """Whether `current` is `previous` minus some entries plus new ids appended at the end."""
    current_ids = {entry.id for entry in current.entries}
    kept = [entry for entry in previous.entries if entry.id in current_ids]
    if current.entries[: len(kept)] != kept:
        return False
    return all(entry.id not in ever for entry in current.entries[len(kept) :])


def dump(store: Store, session_id: str, stream: IO[bytes]) -> int:
    """Write a session's dump; returns the number of versions written.

    Raises:
        SessionNotFoundError: no such session.
    """
    latest = store.load(session_id, raw=True)
    if latest is None:
        raise SessionNotFoundError("no such session", session_id=session_id)
    first = _first_kept_version(store, session_id, latest.version)
    header = _Header(
        DUMP_FORMAT_VERSION,
        session_id,
        latest.version,
        first,
        None if latest.created_at is None else latest.created_at.isoformat(),
        None if latest.updated_at is None else latest.updated_at.isoformat(),
        latest.parent_session_id,
        latest.forked_from_entry_id,
    )
    stream.write(_encoder.encode(header) + b"\n")
    previous: SessionData | None = None
    ever: set[str] = set()
    for version in range(first, latest.version + 1):
        current = (
            latest
            if version == latest.version
            else store.load(session_id, at_version=version, raw=True)
        )
        assert current is not None
        if previous is not None and _is_delta(previous, current, ever):
            current_ids = {entry.id for entry in current.entries}
            previous_ids = {entry.id for entry in previous.entries}
            removed = [entry.id for entry in previous.entries if entry.id not in current_ids]
            listed = [entry for entry in current.entries if entry.id not in previous_ids]
            mode = "delta"
        else:
            removed, listed, mode = [], list(current.entries), "snapshot"
        metadata = as_bytes(current.metadata)
        changed = previous is None or metadata != as_bytes(previous.metadata)
        raw, text = _raw_fields(metadata) if changed else (_NO_RAW, None)
        line = _Version(version, mode, current.leaf_id, removed, len(listed), raw, text)
        stream.write(_encoder.encode(line) + b"\n")
        for entry in listed:
            stream.write(_entry_line(entry) + b"\n")
        ever.update(entry.id for entry in current.entries)
        previous = current
    return latest.version - first + 1


def write_snapshot(data: SessionData, stream: IO[bytes], *, session_id: str | None = None) -> None:
    """Write one `SessionData` as a single-version dump (no history)."""
    header = _Header(DUMP_FORMAT_VERSION, session_id or "", 1, 1)
    stream.write(_encoder.encode(header) + b"\n")
    raw, text = _raw_fields(as_bytes(data.metadata))
    line = _Version(1, "snapshot", data.leaf_id, [], len(data.entries), raw, text)
    stream.write(_encoder.encode(line) + b"\n")
    for entry in data.entries:
        stream.write(_entry_line(entry) + b"\n")


def session_id_hint(first_line: bytes | None) -> str | None:
    """The session id named in a dump's header."""
    if first_line is None:
        return None
    try:
        return decode_json(_header_decoder, first_line).session_id or None
    except BadLine:
        return None


class _Step(msgspec.Struct):
    version: _Version
    line: int
    entries: list[Entry]
    metadata: RawJSON | UnsetType


def _bytes_of(raw: msgspec.Raw, text: str | None) -> RawJSON | UnsetType:
    if len(raw):
        return RawJSON(bytes(raw))
    if text is not None:
        return RawJSON(text.encode("utf-8"))
    return UNSET


def _steps(stream: IO[bytes], path: str) -> Iterator[_Header | _Step]:
    """Parse a dump: the header, then one step per version with its entries."""
    lines = iter_lines(stream)

    def fail(reason: str, line: int) -> MalformedLineError:
        return MalformedLineError(f"malformed eventlog dump: {reason}", path=path, line=line)

    number, first = next(lines, (1, b""))
    try:
        header = decode_json(_header_decoder, first)
    except BadLine:
        raise fail("the first line is not a dump header", number) from None
    if header.eventlog_dump != DUMP_FORMAT_VERSION:
        raise fail(f"unknown dump format version {header.eventlog_dump}", number)
    yield header
    expected = header.first_version
    for number, line in lines:
        try:
            version = decode_json(_version_decoder, line)
        except BadLine:
            raise fail("expected a version line", number) from None
        if version.v != expected or version.mode not in ("delta", "snapshot"):
            raise fail(f"expected version {expected}", number)
        entries: list[Entry] = []
        for _ in range(version.entries):
            entry_number, entry_line = next(lines, (number, b""))
            try:
                item = decode_json(_entry_decoder, entry_line)
            except BadLine:
                raise fail("expected an entry line", entry_number) from None
            payload = _bytes_of(item.payload, item.payload_text)
            if isinstance(payload, UnsetType):
                raise fail("an entry line has no payload", entry_number)
            entries.append(Entry(item.id, item.parent_id, item.kind, item.timestamp, payload))
        yield _Step(version, number, entries, _bytes_of(version.metadata, version.metadata_text))
        expected += 1
    if expected != header.version + 1:
        raise fail(f"the dump ends before version {header.version}", number)


class Restored(msgspec.Struct, frozen=True):
    """What `restore` wrote."""

    session_id: str
    version: int
    entry_lines: int
    leaf_id: str | None


def restore(
    store: Store, stream: IO[bytes], *, path: str, session_id: str | None = None
) -> Restored:
    """Restore a dump into a new session.

    Raises:
        MalformedLineError: the dump is broken (the session is deleted again).
        SessionExistsError: the target session already exists.
    """
    steps = _steps(stream, path)
    header = next(steps)
    assert isinstance(header, _Header)
    target = session_id or header.session_id
    version = entry_lines = 0
    leaf_id: str | None = None
    metadata = RawJSON(b"{}")
    try:
        for number in range(1, header.first_version):
            placeholder: dict[str, Any] = {_FILLER_KEY: number}
            version = _write(store, target, SessionDelta(metadata=placeholder), version)
        for step in steps:
            assert isinstance(step, _Step)
            line = step.version
            if not isinstance(step.metadata, UnsetType):
                metadata = step.metadata
            if line.mode == "delta":
                change: SessionDelta | SessionData = SessionDelta(
                    new_entries=step.entries,
                    removed_entry_ids=line.removed,
                    leaf_id=line.leaf_id,
                    metadata=step.metadata,
                )
            else:
                change = SessionData(entries=step.entries, leaf_id=line.leaf_id, metadata=metadata)
            written = _write(store, target, change, version)
            if written != line.v:
                raise MalformedLineError(
                    f"version {line.v} of the dump changes nothing", path=path, line=step.line
                )
            version, leaf_id = written, line.leaf_id
            entry_lines += len(step.entries)
            if line.v == header.first_version > 1:
                store.purge(target)
    except SessionExistsError:
        raise
    except BaseException:
        if version:
            store.delete(target)
        raise
    return Restored(target, version, entry_lines, leaf_id)


def _write(store: Store, session_id: str, change: SessionDelta | SessionData, version: int) -> int:
    """One restoring write on top of `version` (0: the session must not exist yet)."""
    try:
        if isinstance(change, SessionDelta):
            return store.save_delta(session_id, change, expected_version=version).version
        return store.save(session_id, change, expected_version=version).version
    except ConcurrencyError:
        if version == 0:
            raise SessionExistsError(
                "a dump restores into a new session; this one exists", session_id=session_id
            ) from None
        raise
