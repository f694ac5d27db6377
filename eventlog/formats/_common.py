"""Pieces shared by the format modules: errors, results, validation, ordering, atomic files."""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Protocol, TypeVar

import msgspec

from .._core.branch import branch_to
from .._core.codec import DEFAULT_MAX_ENTRY_BYTES, MAX_DEPTH, check_entry_id, prepare_delta
from ..errors import InvalidInputError
from ..model import Entry, JSONObject, RawJSON, SessionData, SessionDelta

__all__ = [
    "BUILT_MARK",
    "ESCAPE_PREFIX",
    "MISSING",
    "SYNTHETIC_PREFIX",
    "BadLine",
    "ImportResult",
    "LineReader",
    "MalformedLineError",
    "ParsedSession",
    "as_bytes",
    "as_dict",
    "atomic_output",
    "built_payload",
    "decode_json",
    "decode_line",
    "escape_key",
    "escaped_items",
    "export_order",
    "fresh_synthetic_id",
    "has_reserved_key",
    "iso_ms",
    "iter_lines",
    "line_attempts",
    "synthetic_id",
    "text_or_none",
    "unescape_key",
    "validate_entry",
    "validate_id",
    "validate_metadata",
]

SYNTHETIC_PREFIX: Final = "eventlog-line-"
"""Ids that eventlog made up for records that had none (or repeated one)."""

ESCAPE_PREFIX: Final = "eventlog.payload."
"""Prefixed to a payload key that a format uses for an entry field (``id``, ``type``...)."""

BUILT_MARK: Final = "eventlog.payload"
"""In a pi or Claude Code line that eventlog built from an entry: the other keys
are the entry's fields and its payload (keys escaped), not one record of the tool."""

_decoder = msgspec.json.Decoder()
_raw_items_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])
_Line = TypeVar("_Line")
_encoder = msgspec.json.Encoder()


class MalformedLineError(InvalidInputError):
    """A line (or element) of an imported file cannot be read; nothing of the session was written.

    Attributes:
        path: the file (or ``<stream>``).
        line: the 1-based line number.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        line: int,
        session_id: str | None = None,
        entry_id: str | None = None,
    ) -> None:
        super().__init__(message, session_id=session_id, entry_id=entry_id, where=f"{path}:{line}")
        self.path = path
        self.line = line

    def _fields(self) -> dict[str, Any]:
        fields = super()._fields()
        fields["path"] = self.path
        fields["line"] = self.line
        return fields


MISSING: Final = object()
"""Marks a key absent from a JSON object (as opposed to present with null)."""


class BadLine(Exception):
    """Raised by a reader for one unreadable record; the driver skips it or raises."""

    def __init__(self, reason: str, *, entry_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.entry_id = entry_id


class ImportResult(msgspec.Struct, frozen=True):
    """What `import_file` did.

    Attributes:
        session_id: the session written.
        entries: entries read from the file (after skipping bad lines).
        appended: entries written as new records.
        already_stored: entries the session already held with identical content.
        tombstoned: stored entries the import removed (Flue snapshots only).
        skipped_bad: bad lines skipped (only with ``skip_bad=True``).
        bad_lines: line numbers of the skipped lines (the first 1000).
        version: the session's version afterwards.
        leaf_id: the session's leaf afterwards.
    """

    session_id: str
    entries: int
    appended: int
    already_stored: int
    tombstoned: int
    skipped_bad: int
    bad_lines: tuple[int, ...]
    version: int
    leaf_id: str | None


class ParsedSession(msgspec.Struct):
    """What a reader concluded once every record was fed."""

    leaf_id: str | None
    metadata: JSONObject
    merge_metadata: bool = True
    """Merge into the stored metadata (line formats) or replace it whole (Flue)."""
    authoritative: bool = False
    """The file is a snapshot: stored entries it lacks are tombstoned (Flue)."""


class LineReader(Protocol):
    """A per-format reader of a line-based file, fed one line at a time."""

    def feed(
        self, line_no: int, line: bytes, known: Callable[[str], bool]
    ) -> tuple[Entry, bytes] | None:
        """Turn one line into an entry and its validated payload bytes (`None`: a header).

        `known(id)` says whether an earlier accepted line already used that id.

        Raises:
            BadLine: the line cannot be read; the reader's state is unchanged.
        """
        ...

    def finish(self, known: Callable[[str], bool]) -> ParsedSession:
        """The leaf and metadata after the last line.

        Raises:
            BadLine: the file as a whole is inconsistent (reported at its last line).
        """
        ...


def line_attempts(
    reader: LineReader, stream: Iterable[bytes]
) -> Iterator[tuple[int, Callable[[Callable[[str], bool]], tuple[Entry, bytes] | None]]]:
    """One attempt per non-blank line of `stream`, fed to `reader`."""
    for line_no, line in iter_lines(stream):
        yield line_no, functools.partial(reader.feed, line_no, line)


def text_or_none(value: object) -> str | None:
    """A mapped string field (id, parent, timestamp) as given, or `None` if it is not a string."""
    return value if isinstance(value, str) else None


def synthetic_id(session_id: str, line_no: int, attempt: int = 0) -> str:
    """A deterministic id for the record at `line_no` of a session's file.

    `attempt` 0 is the id eventlog has always given; later attempts exist only
    to step past an id that a record of the file already holds.
    """
    seed = f"{session_id}\n{line_no}" + (f"\n{attempt}" if attempt else "")
    digest = hashlib.blake2b(seed.encode(), digest_size=10).hexdigest()
    return f"{SYNTHETIC_PREFIX}{line_no}-{digest}"


def fresh_synthetic_id(session_id: str, line_no: int, known: Callable[[str], bool]) -> str:
    """The first synthetic id for `line_no` that no earlier record of the file holds.

    A file may hold, on an earlier line, the very id a later line would be
    given (the ids are predictable); stepping on deterministically keeps ids
    unique within the file and the same on every import of that file.
    """
    attempt = 0
    while known(candidate := synthetic_id(session_id, line_no, attempt)):
        attempt += 1
    return candidate


def validate_entry(session_id: str, entry: Entry, *, max_entry_bytes: int) -> bytes:
    """Check an entry by the store's own rules; return its payload bytes.

    Raises:
        BadLine: the entry would be refused by `save_delta`.
    """
    try:
        prepared = prepare_delta(
            session_id, SessionDelta(new_entries=[entry]), max_entry_bytes=max_entry_bytes
        )
    except InvalidInputError as exc:
        where = (exc.where or "").replace("new_entries[0].", "")
        raise BadLine(f"{exc.message} (at {where})", entry_id=exc.entry_id) from None
    return prepared.new_entries[0].payload


def validate_id(session_id: str, value: str, *, what: str) -> str:
    """Check an id read from a file by the store's rules, before anything looks it up.

    Raises:
        BadLine: not a valid entry id (e.g. a lone surrogate, which no index can hold).
    """
    try:
        return check_entry_id(value, session_id=session_id, where=what)
    except InvalidInputError as exc:
        raise BadLine(f"{exc.message} (at {what})", entry_id=exc.entry_id) from None


def validate_metadata(session_id: str, metadata: JSONObject, *, max_entry_bytes: int) -> None:
    """Check metadata read from a file by the store's rules.

    Raises:
        BadLine: `save_delta` would refuse it.
    """
    try:
        prepare_delta(session_id, SessionDelta(metadata=metadata), max_entry_bytes=max_entry_bytes)
    except InvalidInputError as exc:
        raise BadLine(exc.message) from None


def iter_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, line without its ``\\n``) for every non-blank line."""
    for number, line in enumerate(stream, start=1):
        body = line[:-1] if line.endswith(b"\n") else line
        if body.strip():
            yield number, body


def as_dict(payload: JSONObject | RawJSON) -> JSONObject:
    """A payload as a dict (decoding `RawJSON`)."""
    if isinstance(payload, RawJSON):
        decoded: JSONObject = _decoder.decode(payload)
        return decoded
    return payload


def as_bytes(payload: JSONObject | RawJSON) -> bytes:
    """A payload as JSON bytes (the stored bytes for `RawJSON`)."""
    return bytes(payload) if isinstance(payload, RawJSON) else _encoder.encode(payload)


def _unprefixed(key: str) -> tuple[int, str]:
    """How many escape prefixes `key` carries, and the key without them."""
    depth = 0
    while key.startswith(ESCAPE_PREFIX):
        key = key[len(ESCAPE_PREFIX) :]
        depth += 1
    return depth, key


def escape_key(key: str, fields: frozenset[str]) -> str:
    """A payload key as written beside a format's own `fields`.

    Keys named like a field, or like an escaped field, get one more prefix, so
    escaping is undone exactly by `unescape_key` and no other key changes.
    """
    return ESCAPE_PREFIX + key if _unprefixed(key)[1] in fields else key


def unescape_key(key: str, fields: frozenset[str]) -> str:
    """The payload key that `escape_key` wrote as `key`."""
    depth, base = _unprefixed(key)
    return key[len(ESCAPE_PREFIX) :] if depth and base in fields else key


def has_reserved_key(keys: Iterable[str], fields: frozenset[str]) -> bool:
    """Whether a tool's line holds a key that an import would read as eventlog's own."""
    for key in keys:
        depth, base = _unprefixed(key)
        if key == BUILT_MARK or (depth and base in fields):
            return True
    return False


def escaped_items(payload: JSONObject | RawJSON, fields: frozenset[str]) -> dict[str, msgspec.Raw]:
    """A payload's keys, escaped beside `fields`, with their values as the stored bytes."""
    items = _raw_items_decoder.decode(as_bytes(payload))
    return {escape_key(key, fields): value for key, value in items.items()}


def built_payload(line: bytes, own: frozenset[str], fields: frozenset[str]) -> bytes | None:
    """The payload of a line eventlog built from an entry (see `BUILT_MARK`), else `None`.

    `own` are the keys the writer put there for the entry's fields; the rest is
    the payload, its keys unescaped and its values kept byte for byte.

    Raises:
        BadLine: the line is not JSON (`decode_json`).
    """
    if b'"' + BUILT_MARK.encode() + b'":true' not in line:
        return None  # eventlog writes compact JSON: a tool's line never has it
    items = decode_json(_raw_items_decoder, line)
    mark = items.get(BUILT_MARK)
    if mark is None or bytes(mark) != b"true":
        return None
    payload = {
        unescape_key(key, fields): value
        for key, value in items.items()
        if key not in own and key != BUILT_MARK
    }
    return _encoder.encode(payload)


def iso_ms(moment: datetime | None) -> str | None:
    """A datetime as JavaScript's ``toISOString`` writes it (UTC, milliseconds, ``Z``)."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def export_order(data: SessionData, tip: Callable[[list[Entry]], str | None]) -> list[Entry]:
    """The entries in log order, unless that would make the target tool resume elsewhere.

    Tools without a stored leaf take the last line as the tip. When `tip` (the
    tool's rule) applied to the log order does not give `data.leaf_id`, the
    entries off the active branch are written first (in log order) and the
    branch last, root to leaf.
    """
    entries = list(data.entries)
    if data.leaf_id is None or tip(entries) == data.leaf_id:
        return entries
    branch = branch_to({entry.id: entry for entry in entries}, data.leaf_id)
    on_branch = {entry.id for entry in branch}
    return [entry for entry in entries if entry.id not in on_branch] + branch


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file that appears at `path` whole, or not at all.

    A regular file (or a new one) is written to a temporary file in the same
    directory, flushed to disk, then moved over `path` with `os.replace`; it keeps
    the mode of the file it replaces, and a new one gets the umask's. A symlink is
    followed: the file it points to is replaced, the link stays. A target that
    exists and is not a regular file (a FIFO, a device such as /dev/null, a
    terminal), or a path naming an open descriptor (/dev/stdout, /dev/fd/N,
    /proc/self/fd/N), is written into, never replaced: the output is spooled to
    an anonymous temporary file and appended to it once complete. On any error
    before that, `path` is left as it was and no temporary file remains.
    """
    target = _replaced_file(Path(path))
    if target is None:
        with tempfile.TemporaryFile() as spool:
            yield spool
            spool.seek(0)
            # O_APPEND: a descriptor's file (`-o /dev/stdout >> log`) keeps what it holds.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND), "wb") as sink:
                while chunk := spool.read(1 << 20):
                    sink.write(chunk)
        return
    temp_name = target.with_name(f".{target.name}.{os.urandom(8).hex()}.tmp")
    # Mode 0o666 lets the umask decide, as for any new file (mkstemp would force 0o600).
    handle = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            with suppress(FileNotFoundError):
                os.fchmod(stream.fileno(), os.stat(target).st_mode & 0o777)
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


_MAX_LINKS: Final = 40  # as the kernel's limit on symlinks followed in one path


def _replaced_file(path: Path) -> Path | None:
    """The regular file (existing or new) that `path` names, or None to write into `path`."""
    current = Path(os.path.realpath(path.parent)) / path.name
    for _ in range(_MAX_LINKS):
        # /proc/<pid>/fd/N (where /dev/stdout and /dev/fd/N lead) names an open
        # descriptor, whose link text is not a path to replace; nothing under /proc is.
        if current.parts[1:2] == ("proc",):
            return None
        if not current.is_symlink():
            break
        link = current.parent / os.readlink(current)
        current = Path(os.path.realpath(link.parent)) / link.name
    if current.is_symlink() or (current.exists() and not current.is_file()):
        return None  # too many links (the open fails with ELOOP), or a FIFO, device, ...
    return current


def decode_error_reason(exc: Exception) -> str:
    """msgspec's message names a position, never the offending text."""
    return f"not valid JSON ({str(exc).split(' - ')[0]})"


def decode_json(decoder: msgspec.json.Decoder[_Line], data: bytes) -> _Line:
    """Decode JSON read from a file; every way it can fail is a `BadLine`.

    Every decode of file input in the formats goes through here, so none can
    leak a decoder's own exception. msgspec recurses per nesting level and
    raises `RecursionError` on hostile nesting, even while skipping a field.
    """
    try:
        return decoder.decode(data)
    except RecursionError:
        reason = f"nested deeper than {MAX_DEPTH} levels"
    except msgspec.ValidationError as exc:
        message = str(exc).split(" - ")[0]
        reason = (
            "a line must be a JSON object"
            if message.startswith("Expected `object`")
            else f"not allowed JSON ({message})"
        )
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        reason = decode_error_reason(exc)
    # Raised outside the handlers: no chained exception holds the offending text.
    raise BadLine(reason)


def decode_line(decoder: msgspec.json.Decoder[_Line], line: bytes) -> _Line:
    """Decode one JSONL line with a typed decoder; any failure is a `BadLine`."""
    return decode_json(decoder, line)


def max_entry_bytes_of(store: object) -> int:
    """The store's entry size limit, or the default one."""
    limit = getattr(store, "max_entry_bytes", DEFAULT_MAX_ENTRY_BYTES)
    return limit if isinstance(limit, int) else DEFAULT_MAX_ENTRY_BYTES
