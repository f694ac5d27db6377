"""Claude Code session JSONL (``~/.claude/projects/<cwd>/<sessionId>.jsonl``).

Layout (FORMATS.md section 3): one record per line; most carry ``uuid``,
``parentUuid``, ``type`` (user, assistant, system, progress, attachment, ...)
and ``timestamp``; metadata lines (``summary``, ``ai-title``, ``custom-title``,
``last-prompt``, ``file-history-snapshot``, ...) carry no uuid. One assistant
reply is often split over several lines. Claude Code stores no leaf.

Mapping: every line becomes one entry, in file order, with its exact bytes as
the payload (`RawJSON`). ``kind`` is ``type`` or ``type/subtype`` (e.g.
``system/compact_boundary``); ``parent_id`` is ``parentUuid``, or for a
compaction boundary (``parentUuid: null``) its ``logicalParentUuid`` when that
entry is in the session, so the session stays one tree. A line without a uuid,
or repeating an earlier line's uuid, gets a synthetic id
(`eventlog.formats.SYNTHETIC_PREFIX`, from the session id and line number, so a
re-import is idempotent) and no parent; export writes such lines back as they
were, without the synthetic id. The leaf is the last uuid line that is not a
sidechain, else the last uuid line (`TipRule`, which export applies too).
A line eventlog built from an entry (see `write`) imports as that entry, its
payload exactly as it was.

Export writes every line in log order; if that would make Claude Code resume
another branch, the active branch is written last.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, Final

import msgspec

from ..model import UNSET, Entry, JSONObject, RawJSON, SessionData
from ._entry_checks import validate_entry, validate_id
from ._export import export_order
from ._lines import SYNTHETIC_PREFIX, BadLine, decode_line, fresh_synthetic_id, text_or_none
from ._payload_keys import (
    BUILT_MARK,
    as_bytes,
    as_dict,
    built_payload,
    escaped_items,
    has_reserved_key,
)
from ._results import ParsedSession

__all__ = ["ClaudeCodeReader", "TipRule", "write"]

_OWN: Final = frozenset(("type", "subtype", "uuid", "parentUuid", "timestamp"))
"""The keys a line built from an entry holds for the entry's fields."""
_FIELDS: Final = _OWN | {"logicalParentUuid", BUILT_MARK}
"""Payload keys escaped in a built line (see `eventlog.formats._payload_keys.escape_key`);
``logicalParentUuid`` too, as import would read it as the parent."""

_encoder = msgspec.json.Encoder()


class _Head(msgspec.Struct):
    type: Any = UNSET
    subtype: Any = UNSET
    uuid: Any = UNSET
    parentUuid: Any = UNSET
    logicalParentUuid: Any = UNSET
    timestamp: Any = UNSET
    isSidechain: Any = UNSET


_head_decoder = msgspec.json.Decoder(_Head)


class TipRule:
    """Where Claude Code resumes: the last uuid line off sidechains, else the last uuid line.

    One rule for the importer (the leaf it records) and the exporter (whether
    the log order already ends on the leaf), fed the same entries in the same
    order, so an unchanged import exports in its own order. A sub-agent file
    (every line ``isSidechain: true``) thus ends on its last uuid line. Lines
    under a synthetic id (no uuid, or a repeated one) never count.
    """

    def __init__(self) -> None:
        self._main: str | None = None
        self._any: str | None = None

    def see(self, entry_id: str, sidechain: object) -> None:
        """Count one entry, in file order (`sidechain`: the line's ``isSidechain``)."""
        if entry_id.startswith(SYNTHETIC_PREFIX):
            return
        self._any = entry_id
        if sidechain is not True:
            self._main = entry_id

    @property
    def tip(self) -> str | None:
        """The tip after the entries seen so far."""
        return self._main or self._any


class ClaudeCodeReader:
    """Reads a Claude Code session file line by line (see the module docstring)."""

    def __init__(self, session_id: str, *, max_entry_bytes: int) -> None:
        self._session_id = session_id
        self._max_entry_bytes = max_entry_bytes
        self._tip = TipRule()

    def feed(
        self, line_no: int, line: bytes, known: Callable[[str], bool]
    ) -> tuple[Entry, bytes] | None:
        """Read one line into an entry."""
        head = decode_line(_head_decoder, line)
        if not isinstance(head.type, str):
            raise BadLine("a line needs a string 'type'")
        if head.uuid is not UNSET and not isinstance(head.uuid, str | None):
            raise BadLine("'uuid' must be a string")
        if head.parentUuid is not UNSET and not isinstance(head.parentUuid, str | None):
            raise BadLine("'parentUuid' must be a string or null")
        kind = f"{head.type}/{head.subtype}" if isinstance(head.subtype, str) else head.type
        if isinstance(head.uuid, str):
            # Validated before `known` looks it up: a spool cannot even hold a bad id.
            validate_id(self._session_id, head.uuid, what="uuid")
        uuid = head.uuid if isinstance(head.uuid, str) and not known(head.uuid) else None
        built = None
        if uuid is None:
            # The payload of a line kept under a synthetic id is the line, built or not.
            entry_id, parent = fresh_synthetic_id(self._session_id, line_no, known), None
        else:
            entry_id, parent = uuid, _parent(self._session_id, head, known)
            built = built_payload(line, _OWN, _FIELDS)
        payload_bytes = line if built is None else built
        entry = Entry(entry_id, parent, kind, text_or_none(head.timestamp), RawJSON(payload_bytes))
        payload = validate_entry(self._session_id, entry, max_entry_bytes=self._max_entry_bytes)
        self._tip.see(entry_id, head.isSidechain)
        return entry, payload

    def finish(self, known: Callable[[str], bool]) -> ParsedSession:
        """The leaf, by `TipRule`."""
        return ParsedSession(leaf_id=self._tip.tip, metadata={})


def _parent(session_id: str, head: _Head, known: Callable[[str], bool]) -> str | None:
    if isinstance(head.parentUuid, str):
        return head.parentUuid
    logical = head.logicalParentUuid
    if not isinstance(logical, str):
        return None
    try:
        validate_id(session_id, logical, what="logicalParentUuid")
    except BadLine:
        return None  # no entry can have that id
    return logical if known(logical) else None


def _kind_of(payload: JSONObject) -> object:
    """The kind import gives a line (``type`` or ``type/subtype``)."""
    subtype = payload.get("subtype")
    line_type = payload.get("type")
    return f"{line_type}/{subtype}" if isinstance(subtype, str) else line_type


def _is_original(entry: Entry, payload: JSONObject) -> bool:
    """Whether the payload is the line this entry was imported from, unchanged in meaning."""
    if entry.id.startswith(SYNTHETIC_PREFIX):
        return True
    if payload.get("uuid") != entry.id or _kind_of(payload) != entry.kind:
        return False
    if has_reserved_key(payload, _FIELDS):
        return False
    parent = payload.get("parentUuid")
    if parent is None:
        logical = payload.get("logicalParentUuid")
        parent_matches = entry.parent_id is None or entry.parent_id == logical
    else:
        parent_matches = parent == entry.parent_id
    return parent_matches and text_or_none(payload.get("timestamp")) == entry.timestamp


def _tip(entries: list[Entry]) -> str | None:
    """`TipRule` over the entries in the order they would be written."""
    rule = TipRule()
    for entry in entries:
        payload = entry.payload
        # Decoding only what can hold the key keeps a long export linear in its bytes.
        maybe = not isinstance(payload, RawJSON) or b'"isSidechain"' in bytes(payload)
        rule.see(entry.id, as_dict(payload).get("isSidechain") if maybe else None)
    return rule.tip


def _line(entry: Entry) -> bytes:
    payload = as_dict(entry.payload)
    if _is_original(entry, payload):
        return as_bytes(entry.payload)
    line_type, slash, subtype = entry.kind.partition("/")
    line: JSONObject = {"type": line_type}
    if slash:
        line["subtype"] = subtype
    line["uuid"] = entry.id
    line["parentUuid"] = entry.parent_id
    if entry.timestamp is not None:
        line["timestamp"] = entry.timestamp
    line[BUILT_MARK] = True
    line.update(escaped_items(entry.payload, _FIELDS))
    return _encoder.encode(line)


def write(data: SessionData, stream: IO[bytes], *, session_id: str | None = None) -> None:
    """Write a session as Claude Code JSONL, the active branch last.

    Imported lines are written back byte for byte; entries created elsewhere
    (or changed since) get ``type``, ``subtype``, ``uuid``, ``parentUuid`` and
    ``timestamp`` from the entry, ``"eventlog.payload": true``, then the payload
    with its keys escaped (`eventlog.formats._payload_keys.escape_key`).
    """
    for entry in export_order(data, _tip):
        stream.write(_line(entry) + b"\n")
