"""OpenAI Codex CLI rollout JSONL (openai/codex ``codex-rs``), import only.

Layout (FORMATS.md section 4): ``{"timestamp", "type", "payload"}`` per line,
``type`` one of ``session_meta``, ``response_item``, ``compacted``,
``turn_context``, ``event_msg`` (newer versions add more). Rollouts carry no
item ids and no tree: history is the line order.

Mapping: every line becomes an entry whose payload is the line's exact bytes;
``kind`` is ``type``, or ``type/payload.type`` when the payload has a type
(``response_item/function_call``, ``event_msg/user_message``). Ids are
synthesized from the session id and line number, so importing the same file
again stores nothing new; each entry's parent is the previous line, and the
leaf is the last line. The first ``session_meta`` payload is also kept as
``metadata["codex.session_meta"]``. Rollbacks (``thread_rolled_back``) and
compactions stay plain entries: eventlog does not replay Codex's rules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec

from ..model import UNSET, Entry, JSONObject, RawJSON
from ._entry_checks import validate_entry as _validate
from ._lines import BadLine, decode_json, decode_line, synthetic_id, text_or_none
from ._results import ParsedSession

__all__ = ["META_KEY", "CodexReader", "session_id_hint"]

META_KEY: Final = "codex.session_meta"


class _Line(msgspec.Struct):
    type: Any = UNSET
    timestamp: Any = UNSET
    payload: msgspec.Raw = msgspec.Raw(b"null")


class _PayloadType(msgspec.Struct):
    type: Any = UNSET


class _MetaId(msgspec.Struct):
    id: Any = UNSET


_line_decoder = msgspec.json.Decoder(_Line)
_payload_type_decoder = msgspec.json.Decoder(_PayloadType)
_meta_id_decoder = msgspec.json.Decoder(_MetaId)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])


def _is_object(raw: msgspec.Raw) -> bool:
    return bytes(raw).lstrip()[:1] == b"{"


def session_id_hint(first_line: bytes | None) -> str | None:
    """The conversation id of a leading ``session_meta`` line, if any."""
    if first_line is None:
        return None
    try:
        line = decode_json(_line_decoder, first_line)
        if line.type != "session_meta" or not _is_object(line.payload):
            return None
        meta_id = decode_json(_meta_id_decoder, line.payload).id
    except BadLine:
        return None
    return meta_id if isinstance(meta_id, str) and meta_id else None


class CodexReader:
    """Reads a Codex rollout line by line (see the module docstring)."""

    def __init__(self, session_id: str, *, max_entry_bytes: int) -> None:
        self._session_id = session_id
        self._max_entry_bytes = max_entry_bytes
        self._previous: str | None = None
        self._meta: JSONObject | None = None

    def feed(
        self, line_no: int, line: bytes, known: Callable[[str], bool]
    ) -> tuple[Entry, bytes] | None:
        """Read one rollout line into an entry chained to the previous one."""
        head = decode_line(_line_decoder, line)
        if not isinstance(head.type, str):
            raise BadLine("a line needs a string 'type'")
        kind = head.type
        payload_is_object = _is_object(head.payload)
        if payload_is_object:
            payload_type = decode_json(_payload_type_decoder, head.payload).type
            if isinstance(payload_type, str):
                kind = f"{head.type}/{payload_type}"
        entry = Entry(
            # Unlike Claude Code's, no id here comes from the file and the line number
            # is part of every synthetic id: they cannot collide, so `known` is not asked.
            synthetic_id(self._session_id, line_no),
            self._previous,
            kind,
            text_or_none(head.timestamp),
            RawJSON(line),
        )
        payload = _validate(self._session_id, entry, max_entry_bytes=self._max_entry_bytes)
        if head.type == "session_meta" and self._meta is None and payload_is_object:
            self._meta = decode_json(_dict_decoder, head.payload)
        self._previous = entry.id
        return entry, payload

    def finish(self, known: Callable[[str], bool]) -> ParsedSession:
        """The leaf (the last line) and the session_meta as metadata."""
        metadata: JSONObject = {} if self._meta is None else {META_KEY: self._meta}
        return ParsedSession(leaf_id=self._previous, metadata=metadata)
