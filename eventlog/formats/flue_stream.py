"""Flue 2.x conversation streams: the records of ``ConversationStreamStore``, one per line.

Flue 2.x (withastro/flue ``packages/runtime/src/conversation-records.ts`` @``018e6aab``,
FORMATS.md section 1.4) keeps a conversation as an append-only stream of
records with the envelope ``{v: 1, id, type, conversationId, harness, session,
timestamp, ...}``. A stream read out of a store (``read(path, {offset, limit})``)
is written as JSONL, one record per line, in offset order.

Mapping: every record is one entry, its payload the record's exact bytes, in
stream order; ``kind`` is ``type``, ``timestamp`` the record's. Ids and parents
come from the records, so the tree is Flue's own:

- a record that starts a conversation entry (``user_message``, ``signal``,
  ``assistant_message_started``: ``messageId``; ``compaction``: ``entryId``) is
  the entry with that id, child of its ``parentId``;
- a record about a message (text and reasoning blocks and deltas, tool calls,
  ``assistant_message_completed``: ``messageId``; ``tool_outcome``,
  ``tool_results_committed``: ``assistantMessageId``) is keyed by its record
  ``id``, child of that message;
- any other record (``conversation_created``, ``active_leaf_changed``,
  ``child_session_retained``, ``submission_settled``, types added later) is
  keyed by its record ``id``, a root.

An entry id a record would reuse (a ``messageId`` given twice) falls back to
the record ``id``. The leaf is the last ``active_leaf_changed``'s ``leafId``,
else the last conversation entry. The conversation's ``conversationId``,
``harness`` and ``session`` (from the first record) go to
``metadata["flue.stream"]``; the session id is the ``conversationId``.

Export writes the records back, in log order, byte for byte. An entry that
was not imported from a stream (its payload has no record ``id``) cannot be
written as a Flue record and is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any, Final

import msgspec

from ..errors import InvalidInputError
from ..model import UNSET, Entry, JSONObject, RawJSON, SessionData
from ._entry_checks import validate_entry, validate_id
from ._lines import BadLine, decode_json, decode_line, text_or_none
from ._payload_keys import as_bytes, as_dict
from ._results import ParsedSession

__all__ = ["STREAM_KEY", "FlueStreamReader", "session_id_hint", "write"]

STREAM_KEY: Final = "flue.stream"
_STARTS: Final = {
    "user_message": "messageId",
    "signal": "messageId",
    "assistant_message_started": "messageId",
    "compaction": "entryId",
}
_ABOUT: Final = {
    "tool_outcome": "assistantMessageId",
    "tool_results_committed": "assistantMessageId",
}


class _Head(msgspec.Struct):
    v: Any = UNSET
    id: Any = UNSET
    type: Any = UNSET
    timestamp: Any = UNSET
    conversationId: Any = UNSET
    harness: Any = UNSET
    session: Any = UNSET
    messageId: Any = UNSET
    entryId: Any = UNSET
    assistantMessageId: Any = UNSET
    parentId: Any = UNSET
    leafId: Any = UNSET


_head_decoder = msgspec.json.Decoder(_Head)


def session_id_hint(first_line: bytes | None) -> str | None:
    """The ``conversationId`` of the first record, if there is one."""
    if first_line is None:
        return None
    try:
        head = decode_json(_head_decoder, first_line)
    except BadLine:
        return None
    conversation = head.conversationId
    return conversation if isinstance(conversation, str) and conversation else None


class FlueStreamReader:
    """Reads a Flue 2.x stream dump record by record (see the module docstring)."""

    def __init__(self, session_id: str, *, max_entry_bytes: int) -> None:
        self._session_id = session_id
        self._max_entry_bytes = max_entry_bytes
        self._stream: JSONObject | None = None
        self._last_entry: str | None = None
        self._leaf: str | object | None = UNSET

    def _id(self, value: object, what: str) -> str | None:
        if value is UNSET or value is None:
            return None
        if not isinstance(value, str):
            raise BadLine(f"'{what}' must be a string")
        return validate_id(self._session_id, value, what=what)

    def feed(
        self, line_no: int, line: bytes, known: Callable[[str], bool]
    ) -> tuple[Entry, bytes] | None:
        """Read one record into an entry."""
        head = decode_line(_head_decoder, line)
        if head.v != 1:
            raise BadLine("a record needs 'v': 1 (a Flue 2.x conversation record)")
        if not isinstance(head.type, str):
            raise BadLine("a record needs a string 'type'")
        record_id = self._id(head.id, "id")
        if record_id is None:
            raise BadLine("a record needs a string 'id'")
        started = _STARTS.get(head.type)
        starts = self._id(getattr(head, started), started) if started else None
        parent: str | None = None
        if starts is not None:
            parent = self._id(head.parentId, "parentId")
        else:
            about = _ABOUT.get(head.type, "messageId")
            parent = self._id(getattr(head, about), about)
            if head.type not in _ABOUT and not head.type.startswith("assistant_"):
                parent = None
        entry_id = starts if starts is not None and not known(starts) else record_id
        if known(entry_id):
            raise BadLine("the record id is used by an earlier record", entry_id=entry_id)
        leaf = self._leaf
        if head.type == "active_leaf_changed":
            leaf = self._id(head.leafId, "leafId")
        entry = Entry(entry_id, parent, head.type, text_or_none(head.timestamp), RawJSON(line))
        payload = validate_entry(self._session_id, entry, max_entry_bytes=self._max_entry_bytes)
        if self._stream is None:
            self._stream = {
                key: value
                for key, value in (
                    ("conversationId", head.conversationId),
                    ("harness", head.harness),
                    ("session", head.session),
                )
                if isinstance(value, str)
            }
        if starts is not None:
            self._last_entry = entry_id
        self._leaf = leaf
        return entry, payload

    def finish(self, known: Callable[[str], bool]) -> ParsedSession:
        """The leaf (the last ``active_leaf_changed``, else the last entry) and the stream."""
        leaf = self._last_entry if self._leaf is UNSET else self._leaf
        if isinstance(leaf, str) and not known(leaf):
            raise BadLine("the last active_leaf_changed names no entry of the stream")
        metadata: JSONObject = {} if self._stream is None else {STREAM_KEY: self._stream}
        return ParsedSession(leaf_id=leaf if isinstance(leaf, str) else None, metadata=metadata)


def write(data: SessionData, stream: IO[bytes], *, session_id: str | None = None) -> None:
    """Write the session's records back, in log order, byte for byte.

    Raises:
        InvalidInputError: an entry holds no Flue record (not imported from a stream).
    """
    for entry in data.entries:
        payload = as_dict(entry.payload)
        if payload.get("v") != 1 or not isinstance(payload.get("id"), str):
            raise InvalidInputError(
                "the entry holds no Flue 2.x record (not imported from a stream)",
                session_id=session_id,
                entry_id=entry.id,
            )
        stream.write(as_bytes(entry.payload) + b"\n")
