"""Payload keys in a tool's lines: escaping entry-field names, built lines."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from ..model import JSONObject, RawJSON
from ._lines import decode_json

__all__ = [
    "BUILT_MARK",
    "ESCAPE_PREFIX",
    "as_bytes",
    "as_dict",
    "built_payload",
    "escape_key",
    "escaped_items",
    "has_reserved_key",
    "unescape_key",
]


ESCAPE_PREFIX: Final = "eventlog.payload."
"""Prefixed to a payload key that a format uses for an entry field (``id``, ``type``...)."""

BUILT_MARK: Final = "eventlog.payload"
"""In a pi or Claude Code line that eventlog built from an entry: the other keys
are the entry's fields and its payload (keys escaped), not one record of the tool."""

_decoder = msgspec.json.Decoder()

_raw_items_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])

_encoder = msgspec.json.Encoder()


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
