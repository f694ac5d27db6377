"""Reading a tool's JSONL: lines, their decoding and errors, synthetic ids."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Protocol, TypeVar

import msgspec

from .._core.codec import MAX_DEPTH
from ..errors import InvalidInputError
from ..model import Entry
from ._results import ParsedSession

__all__ = [
    "MISSING",
    "SYNTHETIC_PREFIX",
    "BadLine",
    "LineReader",
    "MalformedLineError",
    "decode_error_reason",
    "decode_json",
    "decode_line",
    "fresh_synthetic_id",
    "iter_lines",
    "line_attempts",
    "synthetic_id",
    "text_or_none",
]


SYNTHETIC_PREFIX: Final = "eventlog-line-"
"""Ids that eventlog made up for records that had none (or repeated one)."""

_Line = TypeVar("_Line")


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


def iter_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, line without its ``\\n``) for every non-blank line."""
    for number, line in enumerate(stream, start=1):
        body = line[:-1] if line.endswith(b"\n") else line
        if body.strip():
            yield number, body


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
