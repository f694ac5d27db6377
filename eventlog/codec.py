"""Encoding and validation of ids, payloads and metadata (DESIGN.md section 1).

Everything a write needs is validated and encoded here, before any storage is
touched, so a bad call never leaves a partial write behind.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any, Final

import msgspec

from .errors import (
    IdConflictError,
    InvalidIdError,
    InvalidInputError,
    InvalidLeafError,
    InvalidPayloadError,
    PayloadTooLargeError,
)
from .model import Entry, JSONObject, RawJSON, SessionData, SessionDelta, UnsetType

__all__ = [
    "DEFAULT_MAX_ENTRY_BYTES",
    "MAX_DEPTH",
    "MAX_ID_BYTES",
    "EncodedEntry",
    "PreparedDelta",
    "PreparedSnapshot",
    "check_entry_id",
    "check_session_id",
    "decode_object",
    "encode_object",
    "json_decode",
    "prepare_delta",
    "prepare_snapshot",
]

MAX_ID_BYTES: Final = 255
MAX_DEPTH: Final = 256
DEFAULT_MAX_ENTRY_BYTES: Final = 16 * 1024 * 1024

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()
json_decode = _decoder.decode
_header_encoder = msgspec.json.Encoder()


class EncodedEntry(msgspec.Struct, frozen=True):
    """A validated entry with its payload as stored bytes and a content digest."""

    id: str
    parent_id: str | None
    kind: str
    timestamp: str | None
    payload: bytes
    digest: bytes


class PreparedDelta(msgspec.Struct, frozen=True):
    """A validated `SessionDelta`: duplicates collapsed, payloads encoded."""

    new_entries: list[EncodedEntry]
    removed_entry_ids: list[str]
    leaf_id: str | UnsetType | None
    metadata: bytes | None


class PreparedSnapshot(msgspec.Struct, frozen=True):
    """A validated `SessionData`: duplicates collapsed, payloads encoded."""

    entries: list[EncodedEntry]
    leaf_id: str | None
    metadata: bytes


def entry_digest(parent_id: str | None, kind: str, timestamp: str | None, payload: bytes) -> bytes:
    """The content identity of an entry: a digest of all its encoded fields."""
    header = _header_encoder.encode([parent_id, kind, timestamp])
    return hashlib.blake2b(header + payload, digest_size=16).digest()


def _check_text(
    value: object,
    what: str,
    *,
    where: str,
    session_id: str | None,
    entry_id: str | None,
    error: type[InvalidInputError],
) -> str:
    if not isinstance(value, str):
        raise error(
            f"{what} must be a str, not {type(value).__name__}",
            session_id=session_id,
            entry_id=entry_id,
            where=where,
        )
    if "\x00" in value:
        raise error(
            f"{what} must not contain NUL", session_id=session_id, entry_id=entry_id, where=where
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(
            f"{what} is not valid UTF-8 (lone surrogate)",
            session_id=session_id,
            entry_id=entry_id,
            where=where,
        ) from None
    return value


def _check_id(
    value: object, what: str, *, where: str, session_id: str | None, entry_id: str | None = None
) -> str:
    text = _check_text(
        value, what, where=where, session_id=session_id, entry_id=entry_id, error=InvalidIdError
    )
    size = len(text.encode("utf-8"))
    if not 1 <= size <= MAX_ID_BYTES:
        raise InvalidIdError(
            f"{what} must be 1..{MAX_ID_BYTES} UTF-8 bytes, not {size}",
            session_id=session_id,
            entry_id=entry_id,
            where=where,
        )
    return text


def check_session_id(session_id: object, *, where: str = "session_id") -> str:
    """Validate a session id.

    Raises:
        InvalidIdError: not a str of 1..255 UTF-8 bytes without NUL.
    """
    valid_session_id = session_id if isinstance(session_id, str) else None
    return _check_id(session_id, "session id", where=where, session_id=valid_session_id)


def check_entry_id(entry_id: object, *, session_id: str, where: str) -> str:
    """Validate an entry id (or parent, leaf or removed id)."""
    return _check_id(
        entry_id,
        "entry id",
        where=where,
        session_id=session_id,
        entry_id=entry_id if isinstance(entry_id, str) else None,
    )


def _deepest_nesting(value: Any) -> int:
    """Depth of containers, counting the outermost as 1 (iterative: no recursion limit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _check_depth(encoded: bytes, decoded: Any, *, fail: Any) -> None:
    # A container opener can only appear as `{`/`[` bytes, so their count bounds
    # the depth from above; walk the value only when that bound is too high.
    if encoded.count(b"{") + encoded.count(b"[") <= MAX_DEPTH:
        return
    if _deepest_nesting(decoded) > MAX_DEPTH:
        fail(f"nested deeper than {MAX_DEPTH} levels")


def encode_object(
    value: object, *, what: str, session_id: str | None, entry_id: str | None = None, where: str
) -> bytes:
    """Validate a JSON object (dict or `RawJSON`) and return the bytes to store.

    A dict is encoded compactly with its key order kept; `RawJSON` is kept
    byte for byte.

    Raises:
        InvalidPayloadError: not an object, or not allowed JSON (DESIGN.md section 1).
    """

    def fail(reason: str) -> None:
        raise InvalidPayloadError(
            f"{what} is not allowed JSON: {reason}",
            session_id=session_id,
            entry_id=entry_id,
            where=where,
        )

    if isinstance(value, RawJSON):
        encoded = bytes(value)
        try:
            decoded = _decoder.decode(encoded)
        except RecursionError:
            fail(f"nested deeper than {MAX_DEPTH} levels")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            fail(_decode_reason(exc))
        if not isinstance(decoded, dict):
            fail(f"a JSON object is required, not {_json_type(decoded)}")
        _check_depth(encoded, decoded, fail=fail)
        return encoded
    if not isinstance(value, dict):
        fail(f"a JSON object (dict or RawJSON) is required, not {type(value).__name__}")
    try:
        encoded = _encoder.encode(value)
    except RecursionError:
        fail(f"nested deeper than {MAX_DEPTH} levels")
    except UnicodeEncodeError:
        fail("a string is not valid UTF-8 (lone surrogate)")
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        fail(_encode_reason(exc))
    # msgspec writes NaN/Infinity as null and non-string keys as strings; a
    # decode that does not give back an equal value exposes such silent changes.
    try:
        decoded = _decoder.decode(encoded)
    except RecursionError:
        fail(f"nested deeper than {MAX_DEPTH} levels")
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        fail(_decode_reason(exc))
    _check_depth(encoded, decoded, fail=fail)
    if decoded != value:
        fail(_describe_mismatch(value))
    return encoded


def _json_type(value: object) -> str:
    return {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _decode_reason(exc: Exception) -> str:
    # msgspec's message names a position, never the offending text.
    return f"not valid JSON ({str(exc).split(' - ')[0]})"


def _encode_reason(exc: Exception) -> str:
    text = str(exc)
    if "Encoding objects of type" in text:
        return text.split(" is unsupported")[0].replace("Encoding objects of type", "type")
    if "Integer value out of range" in text or isinstance(exc, OverflowError):
        return "an integer is out of range"
    return type(exc).__name__


def _describe_mismatch(value: object) -> str:
    """Say which rule a value breaks that msgspec encoded without complaint."""
    stack: list[object] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return "NaN and Infinity are not allowed"
        if isinstance(node, dict):
            for key in node:
                if not isinstance(key, str):
                    return f"object keys must be str, not {type(key).__name__}"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif not isinstance(node, str | int | float | bool | type(None)):
            return f"type {type(node).__name__} is not a JSON value"
    return "the value does not survive a JSON round trip"


def decode_object(encoded: bytes, *, raw: bool) -> JSONObject | RawJSON:
    """Turn stored payload or metadata bytes back into a dict (or `RawJSON`)."""
    if raw:
        return RawJSON(encoded)
    decoded: JSONObject = _decoder.decode(encoded)
    return decoded


def _encode_entry(
    entry: object, *, session_id: str, where: str, max_entry_bytes: int
) -> EncodedEntry:
    if not isinstance(entry, Entry):
        raise InvalidInputError(
            f"an Entry is required, not {type(entry).__name__}", session_id=session_id, where=where
        )
    entry_id = check_entry_id(entry.id, session_id=session_id, where=f"{where}.id")
    parent_id = entry.parent_id
    if parent_id is not None:
        check_entry_id(parent_id, session_id=session_id, where=f"{where}.parent_id")
        if parent_id == entry_id:
            raise InvalidIdError(
                "an entry cannot be its own parent",
                session_id=session_id,
                entry_id=entry_id,
                where=f"{where}.parent_id",
            )
    kind = _check_text(
        entry.kind,
        "kind",
        where=f"{where}.kind",
        session_id=session_id,
        entry_id=entry_id,
        error=InvalidInputError,
    )
    timestamp = entry.timestamp
    if timestamp is not None:
        _check_text(
            timestamp,
            "timestamp",
            where=f"{where}.timestamp",
            session_id=session_id,
            entry_id=entry_id,
            error=InvalidInputError,
        )
    payload = encode_object(
        entry.payload,
        what="payload",
        session_id=session_id,
        entry_id=entry_id,
        where=f"{where}.payload",
    )
    size = len(payload) + len(entry_id) + len(parent_id or "") + len(kind) + len(timestamp or "")
    if size > max_entry_bytes:
        raise PayloadTooLargeError(
            f"encoded entry is {size} bytes, over the limit of {max_entry_bytes}",
            session_id=session_id,
            entry_id=entry_id,
            where=f"{where}.payload",
        )
    return EncodedEntry(
        entry_id,
        parent_id,
        kind,
        timestamp,
        payload,
        entry_digest(parent_id, kind, timestamp, payload),
    )


def _encode_entries(
    entries: object, *, session_id: str, field: str, max_entry_bytes: int
) -> list[EncodedEntry]:
    if not isinstance(entries, list | tuple):
        raise InvalidInputError(
            f"{field} must be a list of Entry", session_id=session_id, where=field
        )
    unique: dict[str, EncodedEntry] = {}
    for index, entry in enumerate(entries):
        encoded = _encode_entry(
            entry, session_id=session_id, where=f"{field}[{index}]", max_entry_bytes=max_entry_bytes
        )
        earlier = unique.get(encoded.id)
        if earlier is None:
            unique[encoded.id] = encoded
        elif earlier.digest != encoded.digest:
            raise IdConflictError(
                "the same id is given twice with different content",
                session_id=session_id,
                entry_id=encoded.id,
                where=f"{field}[{index}]",
            )
    return list(unique.values())


def _encode_metadata(metadata: object, *, session_id: str, max_entry_bytes: int) -> bytes:
    encoded = encode_object(metadata, what="metadata", session_id=session_id, where="metadata")
    if len(encoded) > max_entry_bytes:
        raise PayloadTooLargeError(
            f"metadata is {len(encoded)} bytes, over the limit of {max_entry_bytes}",
            session_id=session_id,
            where="metadata",
        )
    return encoded


def prepare_delta(session_id: str, delta: object, *, max_entry_bytes: int) -> PreparedDelta:
    """Validate and encode a delta.

    Raises:
        InvalidInputError: any rule of DESIGN.md section 1 broken (the error says where).
        IdConflictError: one id twice in `new_entries` with different content.
    """
    if not isinstance(delta, SessionDelta):
        raise InvalidInputError(
            f"a SessionDelta is required, not {type(delta).__name__}",
            session_id=session_id,
            where="delta",
        )
    new_entries = _encode_entries(
        delta.new_entries,
        session_id=session_id,
        field="new_entries",
        max_entry_bytes=max_entry_bytes,
    )
    if not isinstance(delta.removed_entry_ids, list | tuple):
        raise InvalidInputError(
            "removed_entry_ids must be a list of str",
            session_id=session_id,
            where="removed_entry_ids",
        )
    new_ids = {entry.id for entry in new_entries}
    removed: dict[str, None] = {}
    for index, removed_id in enumerate(delta.removed_entry_ids):
        where = f"removed_entry_ids[{index}]"
        check_entry_id(removed_id, session_id=session_id, where=where)
        if removed_id in new_ids:
            raise InvalidInputError(
                "an id cannot be both new and removed in one delta",
                session_id=session_id,
                entry_id=removed_id,
                where=where,
            )
        removed[removed_id] = None
    leaf_id = delta.leaf_id
    if not isinstance(leaf_id, UnsetType) and leaf_id is not None:
        check_entry_id(leaf_id, session_id=session_id, where="leaf_id")
        if leaf_id in removed:
            raise InvalidLeafError(
                "the leaf is removed by the same delta",
                session_id=session_id,
                entry_id=leaf_id,
                where="leaf_id",
            )
    metadata = None
    if not isinstance(delta.metadata, UnsetType):
        metadata = _encode_metadata(
            delta.metadata, session_id=session_id, max_entry_bytes=max_entry_bytes
        )
    return PreparedDelta(new_entries, list(removed), leaf_id, metadata)


def prepare_snapshot(session_id: str, data: object, *, max_entry_bytes: int) -> PreparedSnapshot:
    """Validate and encode a snapshot for `save`.

    Raises:
        InvalidInputError: any rule of DESIGN.md section 1 broken, or a leaf not in `entries`.
        IdConflictError: one id twice in `entries` with different content.
    """
    if not isinstance(data, SessionData):
        raise InvalidInputError(
            f"a SessionData is required, not {type(data).__name__}",
            session_id=session_id,
            where="data",
        )
    entries = _encode_entries(
        data.entries, session_id=session_id, field="entries", max_entry_bytes=max_entry_bytes
    )
    leaf_id = data.leaf_id
    if leaf_id is not None:
        check_entry_id(leaf_id, session_id=session_id, where="leaf_id")
        if not any(entry.id == leaf_id for entry in entries):
            raise InvalidLeafError(
                "the leaf is not one of the snapshot's entries",
                session_id=session_id,
                entry_id=leaf_id,
                where="leaf_id",
            )
    metadata = _encode_metadata(
        data.metadata, session_id=session_id, max_entry_bytes=max_entry_bytes
    )
    return PreparedSnapshot(entries, leaf_id, metadata)
