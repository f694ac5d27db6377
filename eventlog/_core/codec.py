"""Encoding and validation of ids, payloads and metadata (DESIGN.md section 1).

Everything a write needs is validated and encoded here, before any storage is
touched, so a bad call never leaves a partial write behind.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from ..errors import (
    CorruptionError,
    IdConflictError,
    InvalidIdError,
    InvalidInputError,
    InvalidLeafError,
    InvalidPayloadError,
    PayloadTooLargeError,
)
from ..model import Entry, JSONObject, RawJSON, SessionData, SessionDelta, UnsetType
from .known_snapshot import KnownSnapshot, known_prefix, remember_snapshot

__all__ = [
    "DEFAULT_MAX_ENTRY_BYTES",
    "MAX_DEPTH",
    "MAX_ID_BYTES",
    "STORED_DECODE_ERRORS",
    "EncodedEntry",
    "KnownEncoding",
    "PreparedDelta",
    "PreparedSnapshot",
    "check_entry_id",
    "check_session_id",
    "check_stored",
    "check_tenant",
    "content_digest",
    "decode_stored",
    "encode_object",
    "json_decode",
    "object_decode",
    "prepare_delta",
    "prepare_snapshot",
    "prepare_snapshot_known",
    "raw_object",
    "stored_damage",
]

MAX_ID_BYTES: Final = 255
MAX_DEPTH: Final = 256
DEFAULT_MAX_ENTRY_BYTES: Final = 16 * 1024 * 1024

_encoder = msgspec.json.Encoder()
_encode = _encoder.encode
_decoder = msgspec.json.Decoder()
json_decode = _decoder.decode
# Stored payloads and metadata: a JSON object, or the bytes are damaged.
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_object_decode = _object_decoder.decode
_skip_decode = msgspec.json.Decoder(msgspec.Raw).decode
# What decoding bytes that are not a JSON object can raise (TypeError: a SQLite
# column edited to hold text or NULL instead of a blob).
STORED_DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError, TypeError, ValueError)
_header_encoder = msgspec.json.Encoder()


class EncodedEntry(msgspec.Struct, frozen=True):
    """A validated entry with its payload as stored bytes and a content digest."""

    id: str
    parent_id: str | None
    kind: str
    timestamp: str | None
    payload: bytes
    digest: bytes


class KnownEncoding(msgspec.Struct, frozen=True):
    """An entry as `prepare_snapshot` encoded it, and its payload's bytes decoded
    (our own value, which no caller holds; None for `RawJSON`, whose bytes are
    the whole check). See `_core.snapshot_memo`."""

    encoded: EncodedEntry
    decoded: Any


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


def _utf8_size(text: str) -> int | None:
    """The UTF-8 length of `text`, or None if it holds a lone surrogate."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None


def _check_text(
    value: object,
    what: str,
    *,
    where: str,
    session_id: str | None,
    entry_id: str | None,
    error: type[InvalidInputError],
) -> int:
    """Check a str field (no NUL, valid UTF-8); returns its UTF-8 size."""
    problem = None
    size = None
    if not isinstance(value, str):
        problem = f"{what} must be a str, not {type(value).__name__}"
    elif "\x00" in value:
        problem = f"{what} must not contain NUL"
    else:
        size = _utf8_size(value)
        if size is None:
            problem = f"{what} is not valid UTF-8 (lone surrogate)"
    if problem is not None or size is None:
        raise error(problem or what, session_id=session_id, entry_id=entry_id, where=where)
    return size


def _check_id(
    value: object, what: str, *, where: str, session_id: str | None, entry_id: str | None = None
) -> str:
    size = _check_text(
        value, what, where=where, session_id=session_id, entry_id=entry_id, error=InvalidIdError
    )
    if not 1 <= size <= MAX_ID_BYTES:
        raise InvalidIdError(
            f"{what} must be 1..{MAX_ID_BYTES} UTF-8 bytes, not {size}",
            session_id=session_id,
            entry_id=entry_id,
            where=where,
        )
    assert isinstance(value, str)
    return value


def check_session_id(session_id: object, *, where: str = "session_id") -> str:
    """Validate a session id.

    Raises:
        InvalidIdError: not a str of 1..255 UTF-8 bytes without NUL.
    """
    valid_session_id = session_id if isinstance(session_id, str) else None
    return _check_id(session_id, "session id", where=where, session_id=valid_session_id)


def check_tenant(tenant: object) -> str:
    """Validate a store's tenant: None is the default tenant ``""``; any other
    tenant id follows the session id rules.

    Raises:
        InvalidIdError: not None and not a str of 1..255 UTF-8 bytes without NUL.
    """
    if tenant is None:
        return ""
    return _check_id(tenant, "tenant id", where="tenant", session_id=None)


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


def _depth_problem(encoded: bytes, decoded: Any) -> str | None:
    # A container opener can only appear as `{`/`[` bytes, so their count bounds
    # the depth from above; walk the value only when that bound is too high.
    if encoded.count(b"{") + encoded.count(b"[") <= MAX_DEPTH:
        return None
    if _deepest_nesting(decoded) > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    return None


def _decode_checked(encoded: bytes) -> tuple[Any, str | None]:
    """Decode JSON bytes; on failure return the reason instead of raising.

    Failures are returned, not raised from inside `except`, so the error the
    caller raises carries no chained exception holding the offending text.
    """
    try:
        return _decoder.decode(encoded), None
    except RecursionError:
        return None, f"nested deeper than {MAX_DEPTH} levels"
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return None, _decode_reason(exc)
    except UnicodeDecodeError:
        return None, "a string is not valid UTF-8"


def _encode_checked(value: dict[Any, Any]) -> tuple[bytes, str | None]:
    """Encode a dict; on failure return the reason instead of raising (see above)."""
    try:
        return _encoder.encode(value), None
    except RecursionError:
        return b"", f"nested deeper than {MAX_DEPTH} levels"
    except UnicodeEncodeError:
        return b"", "a string is not valid UTF-8 (lone surrogate)"
    except (TypeError, msgspec.EncodeError, OverflowError) as exc:
        return b"", _encode_reason(exc)
    except Exception as exc:  # a value's own hook failed (e.g. its tzinfo)
        return b"", f"a {type(exc).__name__} was raised while encoding it"


def _object_problem(value: object) -> tuple[bytes, str | None]:
    """The bytes to store for a JSON object, or why it is not allowed JSON."""
    encoded, _, problem = _object_checked(value)
    return encoded, problem


def _object_checked(value: object) -> tuple[bytes, Any, str | None]:
    """The bytes to store for a JSON object, what they decode to (None for
    `RawJSON`), or why it is not allowed JSON."""
    if isinstance(value, RawJSON):
        encoded = bytes(value)
        decoded, problem = _decode_checked(encoded)
        if problem is None and not isinstance(decoded, dict):
            problem = f"a JSON object is required, not {_json_type(decoded)}"
        return encoded, None, problem or _depth_problem(encoded, decoded)
    if not isinstance(value, dict):
        return b"", None, f"a JSON object (dict or RawJSON) is required, not {type(value).__name__}"
    encoded, problem = _encode_checked(value)
    if problem is not None:
        return encoded, None, problem
    # msgspec writes NaN/Infinity as null and non-string keys as strings; a
    # decode that does not give back an equal value exposes such silent changes.
    decoded, problem = _decode_checked(encoded)
    if problem is None:
        problem = _depth_problem(encoded, decoded)
    if problem is None and decoded != value:
        problem = _describe_mismatch(value)
    return encoded, decoded, problem


def encode_object(
    value: object, *, what: str, session_id: str | None, entry_id: str | None = None, where: str
) -> bytes:
    """Validate a JSON object (dict or `RawJSON`) and return the bytes to store.

    A dict is encoded compactly with its key order kept; `RawJSON` is kept
    byte for byte.

    Raises:
        InvalidPayloadError: not an object, or not allowed JSON (DESIGN.md section 1).
    """
    encoded, problem = _object_problem(value)
    if problem is not None:
        raise InvalidPayloadError(
            f"{what} is not allowed JSON: {problem}",
            session_id=session_id,
            entry_id=entry_id,
            where=where,
        )
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


def object_decode(encoded: bytes) -> JSONObject:
    """Stored bytes as the JSON object they hold.

    Raises:
        ValueError: they are not one (msgspec.DecodeError is a ValueError).
        TypeError: they are not bytes.
    """
    if type(encoded) is not bytes:
        raise TypeError("not bytes")  # a SQLite blob column edited to hold text
    decoded: JSONObject = _object_decode(encoded)
    return decoded


def raw_object(encoded: bytes) -> RawJSON:
    """Stored bytes as `RawJSON`, checked to be a JSON object without building it.

    Raises:
        ValueError: they are not (msgspec.DecodeError is a ValueError).
        TypeError: they are not bytes.
    """
    if not isinstance(encoded, bytes):
        raise TypeError("not bytes")  # a SQLite blob column edited to hold text or NULL
    # Skipping checks the syntax, escapes included, but not the UTF-8 of strings.
    _skip_decode(encoded)
    if not encoded.isascii():
        encoded.decode("utf-8")
    if encoded[:1] != b"{" and encoded.lstrip()[:1] != b"{":
        raise ValueError("not an object")
    return RawJSON(encoded)


def stored_damage(
    what: str, *, session_id: str | None = None, entry_id: str | None = None
) -> CorruptionError:
    """The error for stored bytes that are not a JSON object (it never shows them)."""
    return CorruptionError(
        f"the stored {what} is not a JSON object (damaged or edited outside eventlog)",
        session_id=session_id,
        entry_id=entry_id,
        where=what,
    )


def decode_stored(
    encoded: bytes,
    *,
    raw: bool,
    what: str,
    session_id: str | None = None,
    entry_id: str | None = None,
) -> JSONObject | RawJSON:
    """Stored payload or metadata bytes as a dict, or as `RawJSON` (checked all the same).

    Raises:
        CorruptionError: the bytes are not a JSON object.
    """
    try:
        # A SQLite column edited to hold text gives a str here, whatever the
        # annotation says: TypeError is among the errors caught.
        return raw_object(encoded) if raw else object_decode(encoded)
    except STORED_DECODE_ERRORS:
        pass
    # Raised outside the handler: no chained exception holds the stored text.
    raise stored_damage(what, session_id=session_id, entry_id=entry_id)


def check_stored(
    encoded: bytes, *, what: str, session_id: str | None = None, entry_id: str | None = None
) -> None:
    """Check that stored bytes are a JSON object, as a read would find them.

    Raises:
        CorruptionError: they are not.
    """
    decode_stored(encoded, raw=True, what=what, session_id=session_id, entry_id=entry_id)


def content_digest(
    parent_id: str | None, kind: str, timestamp: str | None, payload: bytes
) -> bytes:
    """The digest of an entry's content (its encoded bytes), as `EncodedEntry.digest`."""
    header = _header_encoder.encode([parent_id, kind, timestamp])
    return hashlib.blake2b(header + payload, digest_size=16).digest()


def _plain_text(value: object) -> bool:
    """A str with no NUL and no lone surrogate (the common, ASCII case is checked cheaply)."""
    return (
        type(value) is str
        and "\x00" not in value
        and (value.isascii() or _utf8_size(value) is not None)
    )


def _plain_id(value: object) -> bool:
    if not _plain_text(value):
        return False
    assert isinstance(value, str)
    size = len(value) if value.isascii() else len(value.encode("utf-8"))
    return 1 <= size <= MAX_ID_BYTES


def _encode_entry(
    entry: object, *, session_id: str, field: str, index: int, max_entry_bytes: int
) -> EncodedEntry:
    return _encode_entry_known(
        entry,
        session_id=session_id,
        field=field,
        index=index,
        max_entry_bytes=max_entry_bytes,
        remember=False,
    ).encoded


def _encode_entry_known(
    entry: object,
    *,
    session_id: str,
    field: str,
    index: int,
    max_entry_bytes: int,
    remember: bool,
) -> KnownEncoding:
    """The entry encoded, with its payload's decoded value if `remember` (else
    `_UNKNOWN`: a caller that keeps no memo keeps no second copy of a payload)."""
    # Fast path for a well-formed entry: a save of a long snapshot checks every
    # entry, so no message or location string is built unless something is wrong.
    if (
        type(entry) is Entry
        and _plain_id(entry.id)
        and (
            entry.parent_id is None or (_plain_id(entry.parent_id) and entry.parent_id != entry.id)
        )
        and _plain_text(entry.kind)
        and (entry.timestamp is None or _plain_text(entry.timestamp))
    ):
        payload, decoded, problem = _object_checked(entry.payload)
        if problem is None:
            header = _header_encoder.encode([entry.parent_id, entry.kind, entry.timestamp])
            if len(payload) + len(header) + len(entry.id) <= max_entry_bytes:
                digest = hashlib.blake2b(header + payload, digest_size=16).digest()
                return KnownEncoding(
                    EncodedEntry(
                        entry.id, entry.parent_id, entry.kind, entry.timestamp, payload, digest
                    ),
                    decoded if remember else _UNKNOWN,
                )
    encoded = _encode_entry_checked(
        entry, session_id=session_id, where=f"{field}[{index}]", max_entry_bytes=max_entry_bytes
    )
    # Only reached for entries the checks above turn away and the careful path
    # accepts (a str subclass, say): nothing to remember a decoded value by.
    return KnownEncoding(encoded, _UNKNOWN)


_UNKNOWN: Final = object()
"""A `KnownEncoding.decoded` that no payload equals: the entry is never taken as known."""


def _known_entry(entry: Entry, known: KnownEncoding) -> bool:
    """Whether `entry` (an `Entry`, not a subclass, with a str id, not a
    subclass, equal to `known`'s) has the content of `known` and is allowed
    JSON, without checking or hashing it again: its header strings are the
    same (str, not subclasses, or None where `known` has None), its payload
    encodes to the same bytes, and (a dict) equals their decoded value, which
    is what `_object_checked` makes sure of by decoding. Never raises."""
    stored = known.encoded
    parent_id, kind, timestamp = entry.parent_id, entry.kind, entry.timestamp
    if not (
        type(kind) is str
        and kind == stored.kind
        and (parent_id is None or type(parent_id) is str)
        and parent_id == stored.parent_id
        and (timestamp is None or type(timestamp) is str)
        and timestamp == stored.timestamp
    ):
        return False
    payload = entry.payload
    decoded = known.decoded
    if type(payload) is dict:
        if decoded is None or decoded is _UNKNOWN:
            return False
        try:
            return _encode(payload) == stored.payload and decoded == payload
        except Exception:  # the careful path says what is wrong with it
            return False
    return type(payload) is RawJSON and decoded is None and payload == stored.payload


def _encode_entry_checked(
    entry: object, *, session_id: str, where: str, max_entry_bytes: int
) -> EncodedEntry:
    """The careful path: every check in order, raising the error that names where."""
    if not isinstance(entry, Entry):
        raise InvalidInputError(
            f"an Entry is required, not {type(entry).__name__}", session_id=session_id, where=where
        )
    entry_id = check_entry_id(entry.id, session_id=session_id, where=f"{where}.id")
    parent_id = entry.parent_id
    if parent_id is not None:
        # The entry at fault is this one, whatever its parent id holds.
        _check_id(
            parent_id,
            "parent id",
            session_id=session_id,
            entry_id=entry_id,
            where=f"{where}.parent_id",
        )
        if parent_id == entry_id:
            raise InvalidIdError(
                "an entry cannot be its own parent",
                session_id=session_id,
                entry_id=entry_id,
                where=f"{where}.parent_id",
            )
    for field, value in (("kind", entry.kind), ("timestamp", entry.timestamp)):
        if value is not None or field == "kind":
            _check_text(
                value,
                field,
                where=f"{where}.{field}",
                session_id=session_id,
                entry_id=entry_id,
                error=InvalidInputError,
            )
    for field, value in (
        ("parent_id", parent_id),
        ("kind", entry.kind),
        ("timestamp", entry.timestamp),
    ):
        # msgspec encodes no str subclass, so the header below would raise a bare
        # TypeError: refuse one here, as a typed error that says where.
        if value is not None and type(value) is not str:
            raise (InvalidIdError if field == "parent_id" else InvalidInputError)(
                f"{field} must be a str, not {type(value).__name__}",
                session_id=session_id,
                entry_id=entry_id,
                where=f"{where}.{field}",
            )
    payload = encode_object(
        entry.payload,
        what="payload",
        session_id=session_id,
        entry_id=entry_id,
        where=f"{where}.payload",
    )
    header = _header_encoder.encode([parent_id, entry.kind, entry.timestamp])
    size = len(payload) + len(header) + len(entry_id)
    if size > max_entry_bytes:
        raise PayloadTooLargeError(
            f"encoded entry is about {size} bytes, over the limit of {max_entry_bytes}",
            session_id=session_id,
            entry_id=entry_id,
            where=f"{where}.payload",
        )
    digest = hashlib.blake2b(header + payload, digest_size=16).digest()
    return EncodedEntry(entry_id, parent_id, entry.kind, entry.timestamp, payload, digest)


def _encode_entries(
    entries: object, *, session_id: str, field: str, max_entry_bytes: int
) -> list[EncodedEntry]:
    return [
        known.encoded
        for known in _encode_known(
            entries,
            session_id=session_id,
            field=field,
            max_entry_bytes=max_entry_bytes,
            known={},
            remember=False,
        ).values()
    ]


def _encode_known(
    entries: object,
    *,
    session_id: str,
    field: str,
    max_entry_bytes: int,
    known: Mapping[str, KnownEncoding],
    remember: bool,
    after: KnownSnapshot | None = None,
) -> dict[str, KnownEncoding]:
    """Each entry encoded (in order, duplicates collapsed), taken from `known`
    where `_known_entry` says its content is that one; with `remember`, each
    with its payload's decoded value (to be known next time). `after`: a known
    snapshot that `entries` start with (`known_prefix`), taken whole."""
    if not isinstance(entries, list | tuple):
        raise InvalidInputError(
            f"{field} must be a list of Entry", session_id=session_id, where=field
        )
    unique: dict[str, KnownEncoding] = dict(after.by_id) if after is not None else {}
    look_up = known.get
    start = 0 if after is None else len(after.encoded)
    for index, entry in enumerate(entries[start:] if start else entries, start):
        found = None
        if type(entry) is Entry and type(entry.id) is str:
            found = look_up(entry.id)
        if found is None or not _known_entry(entry, found):
            found = _encode_entry_known(
                entry,
                session_id=session_id,
                field=field,
                index=index,
                max_entry_bytes=max_entry_bytes,
                remember=remember,
            )
        encoded = found.encoded
        earlier = unique.setdefault(encoded.id, found)
        if earlier is not found and earlier.encoded.digest != encoded.digest:
            raise IdConflictError(
                "the same id is given twice with different content",
                session_id=session_id,
                entry_id=encoded.id,
                where=f"{field}[{index}]",
            )
    return unique


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
    return prepare_snapshot_known(
        session_id, data, max_entry_bytes=max_entry_bytes, known={}, remember=False
    )[0]


def prepare_snapshot_known(
    session_id: str,
    data: object,
    *,
    max_entry_bytes: int,
    known: KnownSnapshot | Mapping[str, KnownEncoding],
    remember: bool = True,
) -> tuple[PreparedSnapshot, KnownSnapshot | None]:
    """`prepare_snapshot`, reusing the encodings of entries whose content is
    known (`known_prefix` for the entries it starts with, then `_known_entry`);
    returns the snapshot as known next time too (None without `remember`).
    The result is the same as without `known`.

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
    after = None
    if isinstance(known, KnownSnapshot):
        if isinstance(data.entries, list | tuple) and known_prefix(data.entries, known):
            after = known
        known = known.by_id
    encodings = _encode_known(
        data.entries,
        session_id=session_id,
        field="entries",
        max_entry_bytes=max_entry_bytes,
        known=known,
        remember=remember,
        after=after,
    )
    remembered = remember_snapshot(encodings, after=after) if remember else None
    entries = (
        remembered.encoded
        if remembered is not None
        else [found.encoded for found in encodings.values()]
    )
    leaf_id = data.leaf_id
    if leaf_id is not None:
        check_entry_id(leaf_id, session_id=session_id, where="leaf_id")
        if leaf_id not in encodings:
            raise InvalidLeafError(
                "the leaf is not one of the snapshot's entries",
                session_id=session_id,
                entry_id=leaf_id,
                where="leaf_id",
            )
    metadata = _encode_metadata(
        data.metadata, session_id=session_id, max_entry_bytes=max_entry_bytes
    )
    return PreparedSnapshot(entries, leaf_id, metadata), remembered
