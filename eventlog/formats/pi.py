"""pi-mono coding-agent session JSONL (badlogic/pi-mono, session format v3; v1 and v2 migrated).

Layout (FORMATS.md section 2): a header line ``{"type":"session","version":3,"id",
"timestamp","cwd",...}``, then one entry per line with ``type``, ``id``,
``parentId`` and ``timestamp``. pi stores no leaf: on reload the last line is
the tip (a newer harness adds ``leaf`` entries whose ``targetId`` is the tip).

Mapping: each entry line becomes an entry with ``kind=type``; its payload is the
exact bytes of the whole line (`RawJSON`), so unknown types and fields, key
order and number spelling survive and export writes the line back byte for
byte. The header becomes ``metadata["pi.header"]``. The leaf is the last
line's id, or a ``leaf`` line's ``targetId``. A v1 or v2 file is migrated as
pi migrates it on load (`eventlog.formats._pi_migrate`, with deterministic
ids for v1): the payload is the line as pi would rewrite it, so export writes
the current format and importing that again gives the same session.

Export writes the header, then the entries in log order; if that order would
make pi resume another branch, the active branch is written last. An entry
that was not imported from pi (or was changed since) is written as a line
built from it: ``type``, ``id``, ``parentId``, ``timestamp``, then
``"eventlog.payload": true``, then the payload's keys, a key named like one of
those written ``eventlog.payload.<key>``. Import of such a line takes back the
entry and its payload exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, Final

import msgspec

from ..model import UNSET, Entry, JSONObject, RawJSON, SessionData
from ._entry_checks import validate_entry, validate_id, validate_metadata
from ._export import export_order, iso_ms
from ._lines import MISSING, BadLine, decode_json, decode_line, text_or_none
from ._payload_keys import (
    BUILT_MARK,
    as_bytes,
    as_dict,
    built_payload,
    escaped_items,
    has_reserved_key,
)
from ._pi_migrate import CURRENT_VERSION, Migration, header_version
from ._results import ParsedSession

__all__ = ["HEADER_KEY", "PiReader", "session_id_hint", "write"]

HEADER_KEY: Final = "pi.header"
_MAPPED: Final = ("type", "id", "parentId", "timestamp")
_OWN: Final = frozenset(_MAPPED)
"""The keys a line built from an entry holds for the entry's fields."""
_FIELDS: Final = _OWN | {BUILT_MARK}
"""Payload keys escaped in a built line (see `eventlog.formats._payload_keys.escape_key`)."""

_encoder = msgspec.json.Encoder()


class _Head(msgspec.Struct):
    type: Any = UNSET
    id: Any = UNSET
    parentId: Any = UNSET
    timestamp: Any = UNSET
    targetId: Any = UNSET


_head_decoder = msgspec.json.Decoder(_Head)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


def session_id_hint(first_line: bytes | None) -> str | None:
    """The session id in the header line, if there is one."""
    if first_line is None:
        return None
    try:
        head = decode_json(_head_decoder, first_line)
    except BadLine:
        return None
    return head.id if head.type == "session" and isinstance(head.id, str) and head.id else None


class PiReader:
    """Reads a pi session file line by line (see the module docstring)."""

    def __init__(self, session_id: str, *, max_entry_bytes: int) -> None:
        self._session_id = session_id
        self._max_entry_bytes = max_entry_bytes
        self._first = True
        self._header: JSONObject | None = None
        self._leaf: str | None = None
        self._migration: Migration | None = None

    def feed(
        self, line_no: int, line: bytes, known: Callable[[str], bool]
    ) -> tuple[Entry, bytes] | None:
        """Read one line: the header, or an entry."""
        first, self._first = self._first, False
        head = decode_line(_head_decoder, line)
        if first:
            if head.type != "session" or not isinstance(head.id, str):
                raise BadLine('the first line is not a pi header {"type":"session","id":...}')
            # The head decoder skipped the other fields unread: read them whole now.
            header = decode_json(_dict_decoder, line)
            version = header_version(header)
            if version < CURRENT_VERSION:
                # As pi on load: the header says v3, the entries are migrated below.
                header["version"] = CURRENT_VERSION
                self._migration = Migration(head.id, version)
            validate_metadata(
                self._session_id, {HEADER_KEY: header}, max_entry_bytes=self._max_entry_bytes
            )
            self._header = header
            return None
        accepted: Callable[[], None] | None = None
        if self._migration is not None:
            line, accepted = self._migration.line(line, known)
            head = decode_line(_head_decoder, line)
        if not isinstance(head.type, str):
            raise BadLine("an entry needs a string 'type'")
        if not isinstance(head.id, str):
            raise BadLine("an entry needs a string 'id'")
        if head.parentId is not UNSET and not isinstance(head.parentId, str | None):
            raise BadLine("'parentId' must be a string or null", entry_id=head.id)
        # Validated before `known` looks them up: a spool cannot even hold a bad id.
        validate_id(self._session_id, head.id, what="id")
        if known(head.id):
            raise BadLine("the id is used by an earlier line", entry_id=head.id)
        tip: str | None = head.id
        if head.type == "leaf":
            target = None if head.targetId is UNSET else head.targetId
            if isinstance(target, str):
                validate_id(self._session_id, target, what="targetId")
            if target is not None and not (isinstance(target, str) and known(target)):
                raise BadLine("a leaf entry's targetId is not an earlier entry", entry_id=head.id)
            tip = target
        built = built_payload(line, _OWN, _FIELDS)
        entry = Entry(
            head.id,
            text_or_none(head.parentId),
            head.type,
            text_or_none(head.timestamp),
            RawJSON(line if built is None else built),
        )
        payload = validate_entry(self._session_id, entry, max_entry_bytes=self._max_entry_bytes)
        if accepted is not None:
            accepted()
        self._leaf = tip
        return entry, payload

    def finish(self, known: Callable[[str], bool]) -> ParsedSession:
        """The leaf (last line wins) and the header as metadata."""
        metadata: JSONObject = {} if self._header is None else {HEADER_KEY: self._header}
        return ParsedSession(leaf_id=self._leaf, metadata=metadata)


def _tip(entries: list[Entry]) -> str | None:
    """pi's rule: the last line is the tip (a `leaf` entry names it)."""
    if not entries:
        return None
    last = entries[-1]
    if last.kind == "leaf":
        target = as_dict(last.payload).get("targetId")
        return target if isinstance(target, str) else None
    return last.id


def _line(entry: Entry) -> bytes:
    """The entry's pi line: its imported line as it was, else one built from the entry."""
    payload = as_dict(entry.payload)
    mapped = tuple(payload.get(key, MISSING) for key in _MAPPED)
    parent = mapped[2] if mapped[2] is not MISSING else None
    if (
        mapped[0] == entry.kind
        and mapped[1] == entry.id
        and parent == entry.parent_id
        and text_or_none(mapped[3]) == entry.timestamp
        and not has_reserved_key(payload, _FIELDS)
    ):
        return as_bytes(entry.payload)
    line: JSONObject = {"type": entry.kind, "id": entry.id, "parentId": entry.parent_id}
    if entry.timestamp is not None:
        line["timestamp"] = entry.timestamp
    line[BUILT_MARK] = True
    line.update(escaped_items(entry.payload, _FIELDS))
    return _encoder.encode(line)


def write(data: SessionData, stream: IO[bytes], *, session_id: str | None = None) -> None:
    """Write a session as a pi JSONL file: header, entries, the active branch last.

    The header is ``metadata["pi.header"]`` when present (as imported), else a
    v3 header built from `session_id` and the session's creation time.
    """
    metadata = as_dict(data.metadata)
    header = metadata.get(HEADER_KEY)
    if not isinstance(header, dict):
        header = {
            "type": "session",
            "version": 3,
            "id": session_id or "",
            "timestamp": iso_ms(data.created_at),
            "cwd": "",
        }
    stream.write(_encoder.encode(header) + b"\n")
    for entry in export_order(data, _tip):
        stream.write(_line(entry) + b"\n")
