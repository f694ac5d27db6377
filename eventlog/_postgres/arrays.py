"""Typed arrays for statement parameters, written straight in Postgres's binary format.

The hot statements pass their rows as arrays (`unnest(...)`). psycopg's
generic list dumper inspects every list on every call to find its element
type, which was about a third of the client's CPU time per `save_delta`. The
element types here are known, so each array is marked with its type and
written in one pass.

Register the dumpers on a connection with `register_array_dumpers`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, ClassVar

from psycopg import BaseConnection
from psycopg.adapt import Dumper
from psycopg.pq import Format

__all__ = ["ByteaArray", "Int8Array", "TextArray", "register_array_dumpers"]

_HEADER = struct.Struct("!iiiii")  # ndim, has-null flag, element oid, length, lower bound
_EMPTY = struct.Struct("!iii")  # ndim 0, no nulls, element oid
_LENGTH = struct.Struct("!i")
_NULL = _LENGTH.pack(-1)
_INT8_OID = 20
_TEXT_OID = 25
_BYTEA_OID = 17


class TextArray(list[str | None]):
    """A text[] parameter."""


class ByteaArray(list[bytes]):
    """A bytea[] parameter."""


class Int8Array(list[int]):
    """A bigint[] parameter."""


def _array(element_oid: int, items: Iterable[bytes | None], count: int) -> bytes:
    if count == 0:
        return _EMPTY.pack(0, 0, element_oid)
    parts = [b""]
    has_null = 0
    pack_length = _LENGTH.pack
    for item in items:
        if item is None:
            has_null = 1
            parts.append(_NULL)
        else:
            parts.append(pack_length(len(item)))
            parts.append(item)
    parts[0] = _HEADER.pack(1, has_null, element_oid, count, 1)
    return b"".join(parts)


class _ArrayDumper(Dumper):
    format = Format.BINARY
    element_oid: ClassVar[int]


class _TextArrayDumper(_ArrayDumper):
    oid = 1009
    element_oid = _TEXT_OID

    def dump(self, obj: Any) -> bytes:
        encoding = self.connection.info.encoding if self.connection is not None else "utf-8"
        items = (None if text is None else text.encode(encoding) for text in obj)
        return _array(self.element_oid, items, len(obj))


class _ByteaArrayDumper(_ArrayDumper):
    oid = 1001
    element_oid = _BYTEA_OID

    def dump(self, obj: Any) -> bytes:
        return _array(self.element_oid, obj, len(obj))


class _Int8ArrayDumper(_ArrayDumper):
    oid = 1016
    element_oid = _INT8_OID
    _pack = struct.Struct("!q").pack

    def dump(self, obj: Any) -> bytes:
        pack = self._pack
        return _array(self.element_oid, (pack(number) for number in obj), len(obj))


def register_array_dumpers(conn: BaseConnection[Any]) -> None:
    """Let `conn` send `TextArray`, `ByteaArray` and `Int8Array` parameters."""
    conn.adapters.register_dumper(TextArray, _TextArrayDumper)
    conn.adapters.register_dumper(ByteaArray, _ByteaArrayDumper)
    conn.adapters.register_dumper(Int8Array, _Int8ArrayDumper)
