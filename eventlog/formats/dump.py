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
for reference.

A restore reads the whole dump once before it writes anything (the lines are
copied to a temporary file and read again for the writes): the header must
agree with the body (``1 <= first_version <= version``, one version line per
version in order, no line after the last) and every entry and metadata must
pass the store's rules, so a malformed or inconsistent dump writes nothing. A
restore that still fails part way (a concurrent writer, the store going away)
deletes the half-restored session again, at the version it last wrote: if
another client has written to it since, the session is kept.

A sealed dump (format 2, written with a keyring: `_sealed_dump`) has the same
lines, each after the header sealed under a dump key that the header holds
wrapped by the keyring; restoring it needs that keyring, opens the lines in
memory and writes them through the store as above.

Cost: a dump loads every kept version, O(versions x live entries); memory and
restore hold one version's entries at a time (the whole session for a
snapshot version).
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any, Final

import msgspec

from .._core.codec import prepare_delta, prepare_snapshot
from ..errors import (
    ConcurrencyError,
    HistoryPurgedError,
    InvalidInputError,
    SessionExistsError,
    SessionNotFoundError,
)
from ..keyring import KeyProvider
from ..model import UNSET, Entry, RawJSON, SessionData, SessionDelta, UnsetType
from ..store import Store
from ._entry_checks import max_entry_bytes_of
from ._importer import Progress, discard_new_session, reported
from ._lines import BadLine, MalformedLineError, decode_json, iter_lines
from ._payload_keys import as_bytes
from ._sealed_dump import SEALED_DUMP_FORMAT, DumpSealer, new_dump_key, open_dump_key

__all__ = [
    "DUMP_FORMAT_VERSION",
    "Restored",
    "dump",
    "read_latest",
    "restore",
    "session_id_hint",
    "write_snapshot",
]

DUMP_FORMAT_VERSION: Final = 1
_FILLER_KEY: Final = "eventlog.restore_placeholder"

MAX_PURGED_VERSIONS: Final = 100_000
"""How many purged versions `restore` recreates as placeholders unless told otherwise.

Each costs one write, so without a bound a dump of a few bytes claiming
``first_version`` 10**8 would keep a store busy for hours."""


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
    data_key: str | None = None  # a sealed dump's wrapped dump key (format 2)


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


def _load_version(store: Store, latest: SessionData, session_id: str, version: int) -> SessionData:
    """Version `version` of the session `latest` is the last version of.

    Raises:
        SessionNotFoundError: the session was deleted (or deleted and created
            again) since `latest` was loaded.
        HistoryPurgedError: the version was purged.
    """
    try:
        data = store.load(session_id, at_version=version, raw=True)
    except InvalidInputError:
        data = None  # only a session created again, with fewer versions, lacks this one
    if data is None or data.created_at != latest.created_at:
        raise SessionNotFoundError(
            "the session was deleted while it was dumped", session_id=session_id
        )
    return data


def _first_kept_version(store: Store, latest: SessionData, session_id: str) -> int:
    low, high = 1, latest.version
    while low < high:
        middle = (low + high) // 2
        try:
            _load_version(store, latest, session_id, middle)
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


def dump(
    store: Store,
    session_id: str,
    stream: IO[bytes],
    *,
    progress: Progress | None = None,
    keyring: KeyProvider | None = None,
) -> int:
    """Write a session's dump; returns the number of versions written.

    Args:
        progress: told the entries of each version once it is read.
        keyring: write a sealed dump (format 2, `_sealed_dump`): every line after
            the header sealed under a fresh dump key wrapped by this keyring's
            active key. Without it the dump is plaintext (format 1).

    Raises:
        SessionNotFoundError: no such session, or it was deleted while it was dumped.
        HistoryPurgedError: the session was purged while it was dumped.
        KeyProviderError: the keyring (a KMS) failed; nothing was written.
    """
    latest = store.load(session_id, raw=True)
    if latest is None:
        raise SessionNotFoundError("no such session", session_id=session_id)
    if progress is not None:
        progress(len(latest.entries))
    first = _first_kept_version(store, latest, session_id)
    sealer: DumpSealer | None = None
    data_key = None
    if keyring is not None:
        sealer, data_key = new_dump_key(keyring, session_id=session_id)
    header = _Header(
        DUMP_FORMAT_VERSION if sealer is None else SEALED_DUMP_FORMAT,
        session_id,
        latest.version,
        first,
        None if latest.created_at is None else latest.created_at.isoformat(),
        None if latest.updated_at is None else latest.updated_at.isoformat(),
        latest.parent_session_id,
        latest.forked_from_entry_id,
        data_key,
    )
    header_line = _encoder.encode(header)
    stream.write(header_line + b"\n")
    write = _line_writer(stream, sealer, header_line)
    previous: SessionData | None = None
    ever: set[str] = set()
    for version in range(first, latest.version + 1):
        if version == latest.version:
            current = latest
        else:
            current = _load_version(store, latest, session_id, version)
            if progress is not None:
                progress(len(current.entries))
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
        write(_encoder.encode(line))
        for entry in listed:
            write(_entry_line(entry))
        ever.update(entry.id for entry in current.entries)
        previous = current
    return latest.version - first + 1


def _line_writer(
    stream: IO[bytes], sealer: DumpSealer | None, header_line: bytes
) -> Callable[[bytes], None]:
    """What writes each line after the header: as it is, or sealed."""
    if sealer is None:

        def write_plain(line: bytes) -> None:
            stream.write(line + b"\n")

        return write_plain
    sealer.bind_header(header_line)
    numbers = itertools.count(2)

    def write_sealed(line: bytes) -> None:
        stream.write(sealer.seal_line(next(numbers), line) + b"\n")

    return write_sealed


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


def _parse(
    stream: Iterable[bytes], path: str, keyring: KeyProvider | None = None
) -> tuple[_Header, Iterator[_Step]]:
    """Parse a dump: the header, and a reader of one step per version with its entries.

    Raises:
        MalformedLineError: the header is not a dump header.
        DecryptionError: the dump is sealed and `keyring` is None or cannot open it.
    """
    lines = iter_lines(stream)
    number, first = next(lines, (1, b""))
    try:
        header = decode_json(_header_decoder, first)
    except BadLine:
        raise _malformed("the first line is not a dump header", path, number) from None
    if header.eventlog_dump not in (DUMP_FORMAT_VERSION, SEALED_DUMP_FORMAT):
        raise _malformed(f"unknown dump format version {header.eventlog_dump}", path, number)
    if (header.eventlog_dump == SEALED_DUMP_FORMAT) != (header.data_key is not None):
        raise _malformed("data_key is in a sealed dump's header, and only there", path, number)
    if header.data_key is not None:
        sealer = open_dump_key(keyring, header.data_key, session_id=header.session_id, path=path)
        sealer.bind_header(first)
        lines = sealer.open_lines(lines, path=path)
    if not 1 <= header.first_version <= header.version:
        raise _malformed("the header needs 1 <= first_version <= version", path, number)
    return header, _versions(lines, header, path)


def _malformed(reason: str, path: str, line: int) -> MalformedLineError:
    return MalformedLineError(f"malformed eventlog dump: {reason}", path=path, line=line)


def _versions(lines: Iterator[tuple[int, bytes]], header: _Header, path: str) -> Iterator[_Step]:
    expected = header.first_version
    number = 1
    for number, line in lines:
        if expected > header.version:
            raise _malformed(f"a line after the last version ({header.version})", path, number)
        try:
            version = decode_json(_version_decoder, line)
        except BadLine:
            raise _malformed("expected a version line", path, number) from None
        if version.v != expected or version.mode not in ("delta", "snapshot"):
            raise _malformed(f"expected version {expected}", path, number)
        if version.entries < 0:
            raise _malformed("a negative number of entries", path, number)
        entries: list[Entry] = []
        for _ in range(version.entries):
            entry_number, entry_line = next(lines, (number, b""))
            try:
                item = decode_json(_entry_decoder, entry_line)
            except BadLine:
                raise _malformed("expected an entry line", path, entry_number) from None
            payload = _bytes_of(item.payload, item.payload_text)
            if isinstance(payload, UnsetType):
                raise _malformed("an entry line has no payload", path, entry_number)
            entries.append(Entry(item.id, item.parent_id, item.kind, item.timestamp, payload))
        yield _Step(version, number, entries, _bytes_of(version.metadata, version.metadata_text))
        expected += 1
    if expected != header.version + 1:
        raise _malformed(f"the dump ends before version {header.version}", path, number)


def _changes(steps: Iterable[_Step]) -> Iterator[tuple[_Step, SessionDelta | SessionData]]:
    """Each version of the dump with the write that restores it."""
    metadata = RawJSON(b"{}")
    for step in steps:
        line = step.version
        if not isinstance(step.metadata, UnsetType):
            metadata = step.metadata
        if line.mode == "delta":
            yield (
                step,
                SessionDelta(
                    new_entries=step.entries,
                    removed_entry_ids=line.removed,
                    leaf_id=line.leaf_id,
                    metadata=step.metadata,
                ),
            )
        else:
            yield step, SessionData(entries=step.entries, leaf_id=line.leaf_id, metadata=metadata)


def _copied(stream: IO[bytes], copy: IO[bytes]) -> Iterator[bytes]:
    for line in stream:
        copy.write(line)
        yield line


def _check_steps(steps: Iterator[_Step], *, path: str, target: str, limit: int) -> None:
    """Read every version of a dump and check the write that restores it, making none.

    Raises:
        MalformedLineError: a line is malformed, the header disagrees with the
            body, or a version breaks the store's rules.
    """
    for step, change in _changes(steps):
        try:
            if isinstance(change, SessionDelta):
                prepare_delta(target, change, max_entry_bytes=limit)
            else:
                prepare_snapshot(target, change, max_entry_bytes=limit)
        except InvalidInputError as exc:
            raise MalformedLineError(
                f"malformed eventlog dump: version {step.version.v}: {exc.message}",
                path=path,
                line=step.line,
                session_id=target,
                entry_id=exc.entry_id,
            ) from None


class Restored(msgspec.Struct, frozen=True):
    """What `restore` wrote."""

    session_id: str
    version: int
    entry_lines: int
    leaf_id: str | None


def restore(
    store: Store,
    stream: IO[bytes],
    *,
    path: str,
    session_id: str | None = None,
    max_purged_versions: int = MAX_PURGED_VERSIONS,
    progress: Progress | None = None,
    keyring: KeyProvider | None = None,
) -> Restored:
    """Restore a dump into a new session, after checking all of it (see the module docstring).

    Args:
        max_purged_versions: refuse a dump whose first kept version is above this
            plus one (each purged version is recreated as one placeholder write).
        progress: told the entries each restoring write stored.
        keyring: what opens a sealed dump (format 2); its lines are opened in
            memory and written through `store`, which seals them with its own keys.

    Raises:
        MalformedLineError: the dump is broken or inconsistent (nothing written).
        InvalidInputError: the dump has more purged versions than ``max_purged_versions``.
        SessionExistsError: the target session already exists.
        DecryptionError: the dump is sealed and `keyring` cannot open all of it
            (nothing written).
        KeyProviderError: the keyring (a KMS) failed (nothing written).
    """
    if not isinstance(max_purged_versions, int) or max_purged_versions < 0:
        raise InvalidInputError("max_purged_versions must be an int >= 0")
    # A first pass checks the whole dump (copying it) before the second one writes.
    with tempfile.TemporaryFile() as copy:
        header, steps = _parse(_copied(stream, copy), path, keyring)
        target = session_id or header.session_id
        _check_steps(steps, path=path, target=target, limit=max_entry_bytes_of(store))
        if header.first_version - 1 > max_purged_versions:
            raise InvalidInputError(
                f"the dump starts at version {header.first_version}: restoring it writes "
                f"{header.first_version - 1} placeholder versions, more than "
                f"max_purged_versions ({max_purged_versions})",
                session_id=target,
                where=f"{path}:1",
            )
        copy.seek(0)
        header, steps = _parse(copy, path, keyring)
        return _restore_checked(store, header, steps, path=path, target=target, progress=progress)


def read_latest(
    stream: IO[bytes],
    *,
    path: str,
    session_id: str | None = None,
    raw: bool = False,
    keyring: KeyProvider | None = None,
) -> SessionData:
    """The session as the last version of a dump leaves it, read into memory.

    A dump is a history of writes, and what they leave is defined by the
    store's rules (tombstones that stay, superseding records, a leaf that must
    be live), so the dump is restored into a scratch in-memory store, the
    reference backend, and loaded back: the same checks and errors as `restore`.

    Args:
        session_id: the id the session is restored under (default: the dump's own).
        raw: give payloads and metadata as `RawJSON` bytes (as `Store.load` does).
        keyring: what opens a sealed dump.

    Raises:
        MalformedLineError: the dump is broken or inconsistent.
    """
    # Imported here: the formats reach a backend only through the public entry point.
    from .._connect import connect

    with connect("memory://") as scratch:
        restored = restore(scratch, stream, path=path, session_id=session_id, keyring=keyring)
        data = scratch.load(restored.session_id, raw=raw)
    if data is None:
        raise MalformedLineError("the dump restores no session", path=path, line=1)
    return data


def _restore_checked(
    store: Store,
    header: _Header,
    steps: Iterator[_Step],
    *,
    path: str,
    target: str,
    progress: Progress | None,
) -> Restored:
    version = entry_lines = 0
    leaf_id: str | None = None
    try:
        for number in range(1, header.first_version):
            placeholder: dict[str, Any] = {_FILLER_KEY: number}
            version = _write(store, target, SessionDelta(metadata=placeholder), version, None)
        for step, change in _changes(steps):
            line = step.version
            written = _write(store, target, change, version, progress)
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
    except BaseException as error:
        if version:
            discard_new_session(store, target, version, error)
        raise
    return Restored(target, version, entry_lines, leaf_id)


def _write(
    store: Store,
    session_id: str,
    change: SessionDelta | SessionData,
    version: int,
    progress: Progress | None,
) -> int:
    """One restoring write on top of `version` (0: the session must not exist yet)."""
    try:
        if isinstance(change, SessionDelta):
            result = store.save_delta(session_id, change, expected_version=version)
        else:
            result = store.save(session_id, change, expected_version=version)
        return reported(result, progress).version
    except ConcurrencyError:
        if version == 0:
            raise SessionExistsError(
                "a dump restores into a new session; this one exists", session_id=session_id
            ) from None
        raise
