"""pi's on-load migration of old session files (v1, v2) to the current format (v3).

pi migrates a file when it opens it (``migrateToCurrentVersion`` in
badlogic/pi-mono ``packages/coding-agent/src/core/session-manager.ts`` @``83378aad``)
and rewrites it. This does the same, line by line, with one change: pi gives
v1 entries random ids, this gives deterministic ones, so importing the same
v1 file twice gives the same session.

- v1 to v2: every entry (not the header) gets an ``id`` (8 hex chars, as pi's
  ``generateId``) and ``parentId`` = the previous entry's id, added at the end
  of the object as JavaScript adds keys (or in place if the key exists). A
  ``compaction``'s numeric ``firstKeptEntryIndex`` (an index into the file's
  records, the header being 0) becomes ``firstKeptEntryId`` when it names an
  earlier entry (or the compaction itself), and is dropped in every case;
- v2 to v3: a ``message`` whose ``message.role`` is ``hookMessage`` gets ``custom``;
- the header's ``version`` becomes 3.

Values pi leaves alone keep their bytes (msgspec `Raw`). A record pi would
skip as unparsable is not counted in the indexes (with ``skip_bad``, no bad
record is).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Final

import msgspec

from ._lines import BadLine, decode_json

__all__ = ["CURRENT_VERSION", "Migration", "header_version"]

CURRENT_VERSION: Final = 3

_raw_items = msgspec.json.Decoder(dict[str, msgspec.Raw])
_encoder = msgspec.json.Encoder()
_any_decoder = msgspec.json.Decoder(Any)
_ID_BYTES: Final = 4  # 8 hex chars, the length of pi's ids


def header_version(header: dict[str, Any]) -> int:
    """The file's format version as pi reads it (``header.version ?? 1``).

    A version that is not a number is taken as current: pi's ``>=`` test is
    false for it, but nothing sensible can be migrated from it either.
    """
    version = header.get("version")
    if version is None:
        return 1
    if isinstance(version, bool) or not isinstance(version, int | float):
        return CURRENT_VERSION
    return int(version) if version >= 1 else 1


def _entry_id(seed: str, index: int, attempt: int) -> bytes:
    text = f"{seed}\n{index}" + (f"\n{attempt}" if attempt else "")
    return hashlib.blake2b(text.encode(), digest_size=_ID_BYTES).digest()


class Migration:
    """Migrates the entry lines of one file, in order (the header is record 0).

    `seed` is the file's session id: ids depend on it and on the record's
    index only, so they are the same on every import of the file.
    """

    def __init__(self, seed: str, version: int) -> None:
        self._seed = seed
        self._v1 = version < 2
        # Record i's id at [4*(i-1), 4*i): 4 bytes per entry, not a Python str each.
        self._ids = bytearray()

    def line(self, line: bytes, known: Callable[[str], bool]) -> tuple[bytes, Callable[[], None]]:
        """The line migrated, and what to call once the line is accepted.

        Raises:
            BadLine: the line is not a JSON object.
        """
        items = decode_json(_raw_items, line)
        if self._v1:
            index = len(self._ids) // _ID_BYTES + 1
            attempt = 0
            while known((new := _entry_id(self._seed, index, attempt)).hex()):
                attempt += 1
            parent = self._ids[-_ID_BYTES:].hex() if self._ids else None
            items["id"] = msgspec.Raw(_encoder.encode(new.hex()))
            items["parentId"] = msgspec.Raw(_encoder.encode(parent))
            if _text(items.get("type")) == "compaction":
                self._first_kept(items, index, new)
            return self._v2_to_v3(items), lambda: self._ids.extend(new)
        return self._v2_to_v3(items), _nothing

    def _first_kept(self, items: dict[str, msgspec.Raw], index: int, own: bytes) -> None:
        raw = items.get("firstKeptEntryIndex")
        if raw is None:
            return
        value = decode_json(_any_decoder, raw)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return  # pi converts only a number
        del items["firstKeptEntryIndex"]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JavaScript's entries[2.0] is entries[2]
        if not isinstance(value, int) or value < 1 or value > index:
            return  # the header, a later entry (no id yet) or none: pi sets nothing
        at = (value - 1) * _ID_BYTES
        target = own if value == index else self._ids[at : at + _ID_BYTES]
        items["firstKeptEntryId"] = msgspec.Raw(_encoder.encode(bytes(target).hex()))

    def _v2_to_v3(self, items: dict[str, msgspec.Raw]) -> bytes:
        message = items.get("message")
        if _text(items.get("type")) == "message" and message is not None:
            try:
                fields: dict[str, msgspec.Raw] | None = decode_json(_raw_items, message)
            except BadLine:
                fields = None  # not an object: pi leaves it alone
            if fields is not None and _text(fields.get("role")) == "hookMessage":
                fields["role"] = msgspec.Raw(b'"custom"')
                items["message"] = msgspec.Raw(_encoder.encode(fields))
        return _encoder.encode(items)


def _text(raw: msgspec.Raw | None) -> str | None:
    if raw is None:
        return None
    value = decode_json(_any_decoder, raw)
    return value if isinstance(value, str) else None


def _nothing() -> None:
    return None
