"""Flue ``SessionData`` JSON (withastro/flue ``packages/runtime/src/types.ts``, v2 to v8).

Layout (FORMATS.md section 1): one JSON object per session,
``{version, entries: [{type, id, parentId, timestamp, ...}], leafId, metadata,
createdAt, updatedAt}`` (later versions add ``affinityKey``,
``conversationId``, ``childSessions``, ...). The leaf is stored.

Mapping: each element of ``entries`` becomes an entry (``kind=type``, the
payload is the element minus ``type``, ``id``, ``parentId`` and
``timestamp``, key order kept; a payload key named like one of those four is
written as ``eventlog.payload.<key>`` and import takes the prefix off again, see
`eventlog.formats._payload_keys.escape_key`); ``leafId`` is the leaf; Flue's ``metadata``
is eventlog's metadata, plus one reserved key ``"flue.session"`` that holds
every other top-level field, in document order, with ``entries``, ``leafId``
and ``metadata`` kept as ``null`` placeholders marking their positions. Export
rebuilds the same document. An element's four mapped keys are written first
(as Flue creates them); an element without ``timestamp`` is written without it.

Streaming: the document is scanned incrementally and the ``entries`` array is
read one element at a time, so memory holds one element (plus the other
top-level fields), not the document. Import of a document into an existing
session treats it as a snapshot: stored entries it lacks are tombstoned, as
Flue's own stores delete them.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterator
from typing import IO, Any, Final

import msgspec

from ..model import Entry, JSONObject, SessionData
from ._entry_checks import validate_entry, validate_id, validate_metadata
from ._export import iso_ms
from ._lines import BadLine, MalformedLineError, text_or_none
from ._payload_keys import as_dict, escaped_items, unescape_key
from ._results import ParsedSession

__all__ = ["SESSION_KEY", "FlueReader", "read_elements", "write"]

SESSION_KEY: Final = "flue.session"
_MAPPED: Final = ("type", "id", "parentId", "timestamp")
_FIELDS: Final = frozenset(_MAPPED)
_PLACEHOLDERS: Final = ("entries", "leafId", "metadata")
_CHUNK: Final = 1 << 16
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_RUN = re.compile(r"[-+.eE0-9]*")
"""The characters a JSON number can hold: a number is their longest run."""

_encoder = msgspec.json.Encoder()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed JSON")


_json = json.JSONDecoder(parse_constant=_reject_constant)


class _Scanner:
    """An incremental reader of one JSON document from a binary stream."""

    def __init__(self, stream: IO[bytes], path: str) -> None:
        self._stream = stream
        self._path = path
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._buffer = ""
        self._pos = 0
        self._line = 1  # line number of self._buffer[0]
        self._eof = False

    def line(self) -> int:
        """The line number at the current position."""
        return self._line + self._buffer.count("\n", 0, self._pos)

    def fail(self, reason: str, line: int | None = None) -> MalformedLineError:
        return MalformedLineError(
            f"malformed Flue document: {reason}",
            path=self._path,
            line=self.line() if line is None else line,
        )

    def _fill(self, at_least: int = _CHUNK) -> bool:
        if self._eof:
            return False
        self._line += self._buffer.count("\n", 0, self._pos)
        self._buffer = self._buffer[self._pos :]
        self._pos = 0
        data = self._stream.read(max(at_least, _CHUNK))
        try:
            self._buffer += self._utf8.decode(data, final=not data)
        except UnicodeDecodeError:
            raise self.fail("not UTF-8") from None
        if not data:
            self._eof = True
        return True

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end), not consumed."""
        while True:
            match = _WHITESPACE.match(self._buffer, self._pos)
            assert match is not None
            self._pos = match.end()
            if self._pos < len(self._buffer) or not self._fill():
                return self._buffer[self._pos : self._pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self._pos += 1

    def value(self) -> Any:
        """Decode the next JSON value; grows the buffer until it holds the value whole."""
        self.peek()
        while True:
            # A number running to the end of the buffer may go on in the next chunk,
            # and a prefix of it ("12." of "12.5") can parse as a shorter number.
            run = _NUMBER_RUN.match(self._buffer, self._pos)
            assert run is not None
            if run.end() > self._pos and run.end() == len(self._buffer) and self._fill():
                continue
            try:
                value, end = _json.raw_decode(self._buffer, self._pos)
            except json.JSONDecodeError:
                if self._fill(len(self._buffer)):
                    continue
                raise self.fail("not valid JSON") from None
            except (ValueError, RecursionError) as exc:
                raise self.fail(str(exc) if isinstance(exc, ValueError) else "too deep") from None
            self._pos = end
            return value


def read_elements(
    stream: IO[bytes], path: str, on_field: Callable[[str, Any], None]
) -> Iterator[tuple[int, Any]]:
    """Scan a Flue document: yield (line, element) of ``entries``; pass other fields to `on_field`.

    Raises:
        MalformedLineError: the document's structure is broken (not skippable).
    """
    scanner = _Scanner(stream, path)
    scanner.expect("{")
    seen_entries = False
    if scanner.peek() == "}":
        raise scanner.fail("the document has no 'entries'")
    while True:
        key = scanner.value()
        if not isinstance(key, str):
            raise scanner.fail("expected a key")
        scanner.expect(":")
        if key == "entries":
            seen_entries = True
            on_field(key, None)
            scanner.expect("[")
            if scanner.peek() == "]":
                scanner.expect("]")
            else:
                while True:
                    scanner.peek()
                    line = scanner.line()
                    yield line, scanner.value()
                    if scanner.peek() == ",":
                        scanner.expect(",")
                        continue
                    scanner.expect("]")
                    break
        else:
            line = scanner.line()
            value = scanner.value()
            try:
                on_field(key, value)
            except BadLine as bad:
                raise scanner.fail(f"{bad.reason} (a top-level field)", line) from None
        if scanner.peek() == ",":
            scanner.expect(",")
            continue
        scanner.expect("}")
        break
    if scanner.peek() != "":
        raise scanner.fail("text after the document")
    if not seen_entries:
        raise scanner.fail("the document has no 'entries'")


class FlueReader:
    """Turns the elements and fields of a Flue document into entries and metadata."""

    def __init__(self, session_id: str, *, max_entry_bytes: int, path: str) -> None:
        self._session_id = session_id
        self._max_entry_bytes = max_entry_bytes
        self._path = path
        self._header: JSONObject = {}
        self._leaf: Any = None
        self._metadata: Any = {}

    def on_field(self, key: str, value: Any) -> None:
        """Keep a top-level field (``entries`` only marks its position).

        Raises:
            BadLine: the field is not JSON the store allows (Python's parser takes
                lone surrogates and turns ``1e400`` into infinity).
        """
        if key not in ("entries", "leafId"):  # `finish` checks the leaf as an id
            validate_metadata(self._session_id, {key: value}, max_entry_bytes=self._max_entry_bytes)
        if key == "leafId":
            self._leaf = value
        elif key == "metadata":
            self._metadata = value
        self._header[key] = None if key in _PLACEHOLDERS else value

    def feed(self, element: Any, known: Callable[[str], bool]) -> tuple[Entry, bytes]:
        """Read one element of ``entries``."""
        if not isinstance(element, dict):
            raise BadLine("an entry must be a JSON object")
        entry_id, parent, kind = element.get("id"), element.get("parentId"), element.get("type")
        if not isinstance(entry_id, str):
            raise BadLine("an entry needs a string 'id'")
        if not isinstance(kind, str):
            raise BadLine("an entry needs a string 'type'", entry_id=entry_id)
        if not isinstance(parent, str | None):
            raise BadLine("'parentId' must be a string or null", entry_id=entry_id)
        timestamp = element.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, str):
            raise BadLine("'timestamp' must be a string", entry_id=entry_id)
        payload = {
            unescape_key(key, _FIELDS): value
            for key, value in element.items()
            if key not in _MAPPED
        }
        entry = Entry(entry_id, parent, kind, text_or_none(timestamp), payload)
        # Validated before `known` looks the id up: a spool cannot even hold a bad id.
        encoded = validate_entry(self._session_id, entry, max_entry_bytes=self._max_entry_bytes)
        if known(entry_id):
            raise BadLine("the id is used by an earlier entry", entry_id=entry_id)
        return entry, encoded

    def finish(self, known: Callable[[str], bool]) -> ParsedSession:
        """The leaf and metadata, once the whole document is read."""
        if not isinstance(self._metadata, dict):
            raise BadLine("'metadata' must be an object")
        if SESSION_KEY in self._metadata:
            raise BadLine(f"'metadata' uses the reserved key {SESSION_KEY!r}")
        leaf = self._leaf
        if isinstance(leaf, str):
            validate_id(self._session_id, leaf, what="leafId")
        if leaf is not None and not (isinstance(leaf, str) and known(leaf)):
            raise BadLine("'leafId' is not one of the entries")
        metadata = {**self._metadata, SESSION_KEY: self._header}
        validate_metadata(self._session_id, metadata, max_entry_bytes=self._max_entry_bytes)
        return ParsedSession(
            leaf_id=leaf, metadata=metadata, merge_metadata=False, authoritative=True
        )


def _element(entry: Entry) -> bytes:
    element: JSONObject = {"type": entry.kind, "id": entry.id, "parentId": entry.parent_id}
    if entry.timestamp is not None:
        element["timestamp"] = entry.timestamp
    element.update(escaped_items(entry.payload, _FIELDS))
    return _encoder.encode(element)


def write(data: SessionData, stream: IO[bytes], *, session_id: str | None = None) -> None:
    """Write a session as a Flue ``SessionData`` document (compact JSON), entry by entry.

    Without a ``"flue.session"`` metadata key (a session not imported from
    Flue), a v3 document is written with the session's creation and update times.
    """
    metadata = dict(as_dict(data.metadata))
    header = metadata.pop(SESSION_KEY, None)
    if not isinstance(header, dict):
        header = {
            "version": 3,
            "entries": None,
            "leafId": None,
            "metadata": None,
            "createdAt": iso_ms(data.created_at),
            "updatedAt": iso_ms(data.updated_at),
        }
    for key in _PLACEHOLDERS:
        header.setdefault(key, None)
    stream.write(b"{")
    for index, (key, value) in enumerate(header.items()):
        stream.write((b"," if index else b"") + _encoder.encode(key) + b":")
        if key == "entries":
            stream.write(b"[")
            for position, entry in enumerate(data.entries):
                stream.write((b"," if position else b"") + _element(entry))
            stream.write(b"]")
        elif key == "leafId":
            stream.write(_encoder.encode(data.leaf_id))
        elif key == "metadata":
            stream.write(_encoder.encode(metadata))
        else:
            stream.write(_encoder.encode(value))
    stream.write(b"}")
