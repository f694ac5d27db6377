"""The bad-input table: every value the validation contract rejects, by where it goes.

`ValidationContract` parametrizes its tests with these lists, one test per value
and place, with the error's fields checked. `bad_input_calls` turns the same
table into plain calls (one per value and place, each with the error it must
raise), for a catalogue that runs them all on one seeded store, as the project's
fault scenarios do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eventlog import (
    Entry,
    EventlogError,
    InvalidIdError,
    InvalidInputError,
    InvalidPayloadError,
    PayloadTooLargeError,
    RawJSON,
    SessionData,
    SessionDelta,
    Store,
)

from ._helpers import as_any, delta, msg, nested_array, nested_object, nested_raw

MIB = 1024 * 1024
# Over the default 16 MiB entry limit.
TOO_LARGE_TEXT_BYTES = 17 * MIB

BAD_IDS: list[object] = [
    "",
    "a" * 256,
    "é" * 128,
    "\U0001f600" * 64,
    "a\x00b",
    "\x00",
    "\ud800",
    "a\udfffb",
    5,
    1.5,
    b"bytes",
    ["a"],
]
BAD_ID_NAMES = [
    "empty",
    "256-ascii",
    "256-bytes-e-acute",
    "256-bytes-emoji",
    "nul-inside",
    "nul-only",
    "lone-high-surrogate",
    "lone-low-surrogate",
    "int",
    "float",
    "bytes",
    "list",
]

# Ids that refer to an entry (removed ids, leaf ids).
BAD_REFERENCE_IDS: list[object] = ["", "a" * 256, "a\x00", 7]
BAD_REFERENCE_ID_NAMES = ["empty", "long", "nul", "int"]


class _TextSubclass(str):
    """A str subclass: msgspec encodes none, so a header field of one is ill-typed."""


ILL_TYPED_ENTRIES = [
    Entry(id="e", kind=as_any(5)),
    Entry(id="e", kind=as_any(None)),
    Entry(id="e", timestamp=as_any(5)),
    Entry(id="e", timestamp=as_any(b"2024")),
    Entry(id="e", kind=_TextSubclass("message")),
    Entry(id="e", timestamp=_TextSubclass("2024")),
    Entry(id="e", parent_id=_TextSubclass("p")),
]
ILL_TYPED_ENTRY_NAMES = [
    "kind-int",
    "kind-none",
    "timestamp-int",
    "timestamp-bytes",
    "kind-str-subclass",
    "timestamp-str-subclass",
    "parent-str-subclass",
]

# Values that are not allowed JSON anywhere inside a payload or metadata.
BAD_JSON: list[object] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    "\ud800",
    "ok \udc00 ok",
    {"\ud83d": 1},
    {1: "int key"},
    {None: "none key"},
    {1.5: "float key"},
    {True: "bool key"},
    {(1, 2): "tuple key"},
    (1, 2),
    {1, 2},
    object(),
    b"bytes",
    {"nested": [1, {"deep": float("nan")}]},
]
BAD_JSON_NAMES = [
    "nan",
    "inf",
    "-inf",
    "lone-surrogate",
    "lone-low-surrogate",
    "surrogate-key",
    "int-key",
    "none-key",
    "float-key",
    "bool-key",
    "tuple-key",
    "tuple",
    "set",
    "object",
    "bytes",
    "nested-nan",
]

NOT_OBJECT_PAYLOADS: list[object] = [[1, 2], "text", 5, None, True, b'{"a": 1}', (("a", 1),)]
NOT_OBJECT_PAYLOAD_NAMES = ["list", "str", "int", "none", "bool", "plain-bytes", "tuple-pairs"]
NOT_OBJECT_METADATA: list[object] = [[1], "text", None, 3]
NOT_OBJECT_METADATA_NAMES = ["list", "str", "none", "int"]

BAD_RAW = [
    b'{"a": NaN}',
    b'{"a": Infinity}',
    b'{"a": -Infinity}',
    b'{"a": "\\ud800"}',
    b'{"\\udc00": 1}',
    b'{"a": "\xff"}',
    b"[1, 2]",
    b'"text"',
    b"1",
    b"null",
    b"",
    b"   ",
    b"{",
    b'{"a": 1} trailing',
    b'{"a": 1}{"b": 2}',
    b"{'a': 1}",
    b'{"a": 01}',
    b'{"a": [1,]}',
]
BAD_RAW_METADATA = BAD_RAW[:8]

# Builders of a payload nested to a given depth, and the depths past the limit of 256.
NESTED_BUILDERS: list[Callable[[int], Any]] = [nested_object, nested_array, nested_raw]
NESTED_BUILDER_NAMES = ["object", "array", "raw"]
TOO_DEEP = [257, 10_000]


@dataclass(frozen=True)
class BadInput:
    """One bad call on a store, and the eventlog error it must raise (having written nothing)."""

    name: str
    call: Callable[[Store], object]
    error: type[EventlogError]


def _save_delta(session_id: Any, change: SessionDelta) -> Callable[[Store], object]:
    return lambda store: store.save_delta(session_id, change)


def _save(session_id: Any, data: SessionData) -> Callable[[Store], object]:
    return lambda store: store.save(session_id, data)


def _fork(source_id: str, new_id: Any) -> Callable[[Store], object]:
    return lambda store: store.fork(source_id, new_id)


def _changes(session_id: str, **arguments: Any) -> Callable[[Store], object]:
    return lambda store: store.changes(session_id, **arguments)


def _watch(session_id: str, after_version: object) -> Callable[[Store], object]:
    # `watch` checks its arguments at the call, before any iteration.
    return lambda store: store.watch(session_id, after_version=as_any(after_version))


def bad_input_calls(session_id: str) -> list[BadInput]:
    """One call per value and place of the table, each writing to `session_id`.

    The calls add entries `n1` and `n2` (and, in snapshots, `a`); each must fail
    before writing whatever `session_id` holds.
    """
    sid = session_id
    calls: list[BadInput] = []

    def add(name: str, call: Callable[[Store], object], error: type[EventlogError]) -> None:
        calls.append(BadInput(name, call, error))

    for bad, name in zip(BAD_IDS, BAD_ID_NAMES, strict=True):
        value = as_any(bad)
        add(
            f"entry id [{name}]",
            _save_delta(sid, delta(msg("n1"), Entry(id=value))),
            InvalidIdError,
        )
        parent = Entry(id="n2", parent_id=value)
        add(f"parent id [{name}]", _save_delta(sid, delta(msg("n1"), parent)), InvalidIdError)
        snapshot = SessionData(entries=[msg("a"), Entry(id=value)])
        add(f"snapshot entry id [{name}]", _save(sid, snapshot), InvalidIdError)
        add(f"session id [{name}]", _save_delta(value, delta(msg("n1"))), InvalidIdError)
        add(f"fork onto session id [{name}]", _fork(sid, value), InvalidIdError)
    for bad, name in zip(BAD_REFERENCE_IDS, BAD_REFERENCE_ID_NAMES, strict=True):
        value = as_any(bad)
        removed = SessionDelta(removed_entry_ids=["n1", value])
        add(f"removed id [{name}]", _save_delta(sid, removed), InvalidIdError)
        add(f"leaf id [{name}]", _save_delta(sid, delta(leaf=value)), InvalidInputError)
        snapshot = SessionData(entries=[msg("a")], leaf_id=value)
        add(f"snapshot leaf id [{name}]", _save(sid, snapshot), InvalidInputError)
    for entry, name in zip(ILL_TYPED_ENTRIES, ILL_TYPED_ENTRY_NAMES, strict=True):
        add(f"entry field [{name}]", _save_delta(sid, delta(entry)), InvalidInputError)
    for bad, name in zip(BAD_JSON, BAD_JSON_NAMES, strict=True):
        value = as_any(bad)
        entry = Entry(id="n2", payload={"k": [value]})
        add(
            f"payload value [{name}]",
            _save_delta(sid, delta(msg("n1"), entry)),
            InvalidPayloadError,
        )
        metadata_delta = delta(msg("n1"), metadata={"k": value})
        add(f"metadata value [{name}]", _save_delta(sid, metadata_delta), InvalidPayloadError)
        snapshot = SessionData(entries=[msg("a")], metadata={"k": value})
        add(f"snapshot metadata value [{name}]", _save(sid, snapshot), InvalidPayloadError)
    for bad, name in zip(NOT_OBJECT_PAYLOADS, NOT_OBJECT_PAYLOAD_NAMES, strict=True):
        entry = Entry(id="n1", payload=as_any(bad))
        add(f"payload [{name}]", _save_delta(sid, delta(entry)), InvalidPayloadError)
    for bad, name in zip(NOT_OBJECT_METADATA, NOT_OBJECT_METADATA_NAMES, strict=True):
        metadata_delta = delta(msg("n1"), metadata=as_any(bad))
        add(f"metadata [{name}]", _save_delta(sid, metadata_delta), InvalidPayloadError)
    for raw in BAD_RAW:
        entry = Entry(id="n2", payload=RawJSON(raw))
        add(
            f"raw payload [{raw!r}]", _save_delta(sid, delta(msg("n1"), entry)), InvalidPayloadError
        )
    for raw in BAD_RAW_METADATA:
        metadata_delta = delta(msg("n1"), metadata=RawJSON(raw))
        add(f"raw metadata [{raw!r}]", _save_delta(sid, metadata_delta), InvalidPayloadError)
    for depth in TOO_DEEP:
        for build, name in zip(NESTED_BUILDERS, NESTED_BUILDER_NAMES, strict=True):
            entry = Entry(id="n2", payload=build(depth))
            change = delta(msg("n1"), entry)
            add(f"payload {name} depth {depth}", _save_delta(sid, change), InvalidPayloadError)
        metadata_delta = delta(msg("n1"), metadata=nested_object(depth))
        add(f"metadata depth {depth}", _save_delta(sid, metadata_delta), InvalidPayloadError)
    big = "x" * TOO_LARGE_TEXT_BYTES
    entry = Entry(id="n2", payload={"text": big})
    add("payload too large", _save_delta(sid, delta(msg("n1"), entry)), PayloadTooLargeError)
    raw_entry = Entry(id="n2", payload=RawJSON(b'{"text":"' + big.encode() + b'"}'))
    add("raw payload too large", _save(sid, SessionData(entries=[raw_entry])), PayloadTooLargeError)
    add("metadata too large", _save_delta(sid, delta(metadata={"text": big})), PayloadTooLargeError)
    for bad, name in zip(BAD_AFTER_VERSIONS, BAD_AFTER_VERSION_NAMES, strict=True):
        add(f"changes after_version [{name}]", _changes(sid, after_version=bad), InvalidInputError)
        add(f"watch after_version [{name}]", _watch(sid, bad), InvalidInputError)
    for bad, name in zip(BAD_LIMITS, BAD_LIMIT_NAMES, strict=True):
        add(f"changes limit [{name}]", _changes(sid, limit=bad), InvalidInputError)
    calls.extend(bad_read_calls(sid))
    return calls


# Limits and flags of the reads: not a positive int, not a bool.
BAD_LIMITS: list[object] = [0, -1, True, 1.5, "5", None]
BAD_LIMIT_NAMES = ["zero", "negative", "bool", "float", "str", "none"]
BAD_FLAGS: list[object] = [1, None, "yes"]
BAD_FLAG_NAMES = ["int", "none", "str"]
# Prefixes no entry id can start with.
BAD_ID_PREFIXES: list[object] = ["a" * 256, "a\x00", "\ud800", 5, None, b"w"]
BAD_ID_PREFIX_NAMES = ["256-ascii", "nul", "lone-surrogate", "int", "none", "bytes"]


def _read(call: Callable[[Store, Any], object], value: object) -> Callable[[Store], object]:
    return lambda store: call(store, value)


def bad_read_calls(session_id: str) -> list[BadInput]:
    """One call per bad argument of the reads (info, entry, path's limit, scan).

    `None` is a valid limit of `path` and `scan` (no limit) and is left out for them.
    """
    sid = session_id
    calls: list[BadInput] = []

    def add(
        name: str, call: Callable[[Store, Any], object], value: object, error: type[EventlogError]
    ) -> None:
        calls.append(BadInput(name, _read(call, value), error))

    for bad, name in zip(BAD_IDS, BAD_ID_NAMES, strict=True):
        add(f"info session id [{name}]", lambda s, v: s.info(v), bad, InvalidIdError)
        add(f"entry session id [{name}]", lambda s, v: s.entry(v, "a"), bad, InvalidIdError)
        add(f"entry id [{name}] of entry", lambda s, v: s.entry(sid, v), bad, InvalidIdError)
        add(f"scan session id [{name}]", lambda s, v: s.scan(v, id_prefix=""), bad, InvalidIdError)
        if bad != "":
            add(
                f"scan after_id [{name}]",
                lambda s, v: s.scan(sid, id_prefix="", after_id=v),
                bad,
                InvalidIdError,
            )
    for bad, name in zip(BAD_LIMITS, BAD_LIMIT_NAMES, strict=True):
        if bad is None:
            continue
        add(f"path limit [{name}]", lambda s, v: s.path(sid, limit=v), bad, InvalidInputError)
        add(
            f"scan limit [{name}]",
            lambda s, v: s.scan(sid, id_prefix="", limit=v),
            bad,
            InvalidInputError,
        )
    for bad, name in zip(BAD_FLAGS, BAD_FLAG_NAMES, strict=True):
        add(f"entry raw [{name}]", lambda s, v: s.entry(sid, "a", raw=v), bad, InvalidInputError)
        add(
            f"scan raw [{name}]",
            lambda s, v: s.scan(sid, id_prefix="", raw=v),
            bad,
            InvalidInputError,
        )
    for bad, name in zip(BAD_ID_PREFIXES, BAD_ID_PREFIX_NAMES, strict=True):
        add(f"scan id_prefix [{name}]", lambda s, v: s.scan(sid, id_prefix=v), bad, InvalidIdError)

    return calls


# -- the change feed ------------------------------------------------------------

# `changes(after_version=...)`: an int >= 0, never a bool.
BAD_AFTER_VERSIONS: list[object] = [-1, True, False, 1.0, "1", None]
BAD_AFTER_VERSION_NAMES = ["negative", "true", "false", "float", "str", "none"]
# `changes(limit=...)`: an int >= 1, never a bool.
