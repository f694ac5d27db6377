"""Scenario 8: a catalog of bad input, run on every backend.

The catalog is the validation contract's bad-input table
(`eventlog.testing.contract.bad_input`) plus the cases only it has. Each case
must raise its typed eventlog error, and write nothing: a full raw load of every
session, the session list and the raw row count are the same before and after.
Hostile strings (SQL fragments) in places where they are valid must be stored as
plain text and match nothing but themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import pytest
from conftest import Backend

import eventlog
from eventlog import (
    ConcurrencyError,
    Entry,
    EventlogError,
    IdConflictError,
    InvalidIdError,
    InvalidInputError,
    InvalidLeafError,
    InvalidPayloadError,
    PayloadTooLargeError,
    RawJSON,
    SessionData,
    SessionDelta,
    SessionExistsError,
    SessionNotFoundError,
)
from eventlog.testing.contract.bad_input import BadInput, bad_input_calls

from .figures import measured

pytestmark = pytest.mark.fault

DROP = "'); DROP TABLE entries; --"
HOSTILE = [DROP, "' OR '1'='1", "%", "_", "\\", "$1", 'x"; DELETE FROM sessions; --']
LIMIT = 16 * 1024 * 1024  # the default max_entry_bytes


def _wrong(value: object) -> Any:
    """A value of the wrong type, passed as it is (the type checker would refuse it)."""
    return value


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"d": value}
    return value


def _nested_lists(depth: int) -> dict[str, Any]:
    value: list[Any] = []
    for _ in range(depth - 2):
        value = [value]
    return {"l": value}


def _delta(*entries: Entry, **fields: Any) -> SessionDelta:
    return SessionDelta(list(entries), **fields)


def _entry(entry_id: Any = "n1", **fields: Any) -> Entry:
    return Entry(entry_id, **fields)


def _with_payload(payload: Any) -> Callable[[eventlog.Store], object]:
    return lambda s: s.save_delta("seed", _delta(_entry(payload=payload)))


def _with_metadata(metadata: Any) -> Callable[[eventlog.Store], object]:
    return lambda s: s.save_delta("seed", _delta(metadata=metadata))


CASES: list[BadInput] = [
    # The bad-input table of the validation contract, on the seeded session.
    *bad_input_calls("seed"),
    # Cases of the catalogue alone: SQL text, wrong containers, arguments, state.
    # -- entry ids
    BadInput("entry id None", lambda s: s.save_delta("seed", _delta(_entry(None))), InvalidIdError),
    BadInput(
        "entry id bytes", lambda s: s.save_delta("seed", _delta(_entry(b"n1"))), InvalidIdError
    ),
    BadInput(
        "entry id SQL, too long",
        lambda s: s.save_delta("seed", _delta(_entry(DROP * 10))),
        InvalidIdError,
    ),
    BadInput(
        "parent id with NUL",
        lambda s: s.save_delta("seed", _delta(_entry(parent_id="a\x00"))),
        InvalidIdError,
    ),
    BadInput(
        "parent id int", lambda s: s.save_delta("seed", _delta(_entry(parent_id=1))), InvalidIdError
    ),
    BadInput("kind int", lambda s: s.save_delta("seed", _delta(_entry(kind=1))), InvalidInputError),
    BadInput(
        "timestamp datetime",
        lambda s: s.save_delta("seed", _delta(_entry(timestamp=datetime(2024, 1, 1)))),
        InvalidInputError,
    ),
    BadInput(
        "timestamp with NUL",
        lambda s: s.save_delta("seed", _delta(_entry(timestamp="2024\x00"))),
        InvalidInputError,
    ),
    # -- payloads
    BadInput("payload lone surrogate value", _with_payload({"x": "\udfff"}), InvalidPayloadError),
    BadInput("payload lone surrogate key", _with_payload({"\ud800": 1}), InvalidPayloadError),
    BadInput("payload lists depth 300", _with_payload(_nested_lists(300)), InvalidPayloadError),
    BadInput(
        "payload over the size limit", _with_payload({"x": "a" * LIMIT}), PayloadTooLargeError
    ),
    BadInput("payload bytes value", _with_payload({"x": b"\x00"}), InvalidPayloadError),
    BadInput("raw payload array", _with_payload(RawJSON(b"[1]")), InvalidPayloadError),
    BadInput("raw payload not JSON", _with_payload(RawJSON(b"{nope")), InvalidPayloadError),
    BadInput("raw payload SQL", _with_payload(RawJSON(DROP.encode())), InvalidPayloadError),
    # -- metadata
    BadInput("metadata str", _with_metadata(DROP), InvalidPayloadError),
    BadInput(
        "metadata over the size limit", _with_metadata({"x": "a" * LIMIT}), PayloadTooLargeError
    ),
    # -- leaf
    BadInput(
        "leaf unknown", lambda s: s.save_delta("seed", _delta(leaf_id="nope")), InvalidLeafError
    ),
    BadInput(
        "leaf SQL, unknown", lambda s: s.save_delta("seed", _delta(leaf_id=DROP)), InvalidLeafError
    ),
    BadInput(
        "leaf tombstoned", lambda s: s.save_delta("seed", _delta(leaf_id="c")), InvalidLeafError
    ),
    BadInput(
        "leaf removed in the same delta",
        lambda s: s.save_delta("seed", _delta(removed_entry_ids=["b"], leaf_id="b")),
        InvalidLeafError,
    ),
    BadInput("leaf empty", lambda s: s.save_delta("seed", _delta(leaf_id="")), InvalidInputError),
    BadInput("leaf int", lambda s: s.save_delta("seed", _delta(leaf_id=7)), InvalidInputError),
    BadInput(
        "snapshot leaf not in entries",
        lambda s: s.save("seed", SessionData([Entry("a")], leaf_id="b")),
        InvalidLeafError,
    ),
    BadInput(
        "new session leaf unknown",
        lambda s: s.save_delta("fresh", _delta(_entry(), leaf_id="x")),
        InvalidLeafError,
    ),
    # -- ids inside a delta or snapshot
    BadInput(
        "same id twice, changed content",
        lambda s: s.save_delta("seed", _delta(_entry(payload={"v": 1}), _entry(payload={"v": 2}))),
        IdConflictError,
    ),
    BadInput(
        "stored id, changed content",
        lambda s: s.save_delta("seed", _delta(Entry("a", payload={"other": 1}))),
        IdConflictError,
    ),
    BadInput(
        "tombstoned id, changed content",
        lambda s: s.save_delta("seed", _delta(Entry("c", "b", payload={"other": 1}))),
        IdConflictError,
    ),
    BadInput(
        "snapshot same id twice, changed",
        lambda s: s.save("seed", SessionData([Entry("a"), Entry("a", kind="other")])),
        IdConflictError,
    ),
    BadInput(
        "id both new and removed",
        lambda s: s.save_delta("seed", _delta(_entry(), removed_entry_ids=["n1"])),
        InvalidInputError,
    ),
    BadInput(
        "removed ids int",
        lambda s: s.save_delta("seed", _delta(removed_entry_ids=[1])),
        InvalidInputError,
    ),
    BadInput(
        "removed ids a str",
        lambda s: s.save_delta("seed", _delta(removed_entry_ids="ab")),
        InvalidInputError,
    ),
    # -- wrong types of the containers
    BadInput("delta None", lambda s: s.save_delta("seed", _wrong(None)), InvalidInputError),
    BadInput(
        "delta dict", lambda s: s.save_delta("seed", _wrong({"new_entries": []})), InvalidInputError
    ),
    BadInput(
        "new entries a dict",
        lambda s: s.save_delta("seed", SessionDelta(_wrong({"a": Entry("a")}))),
        InvalidInputError,
    ),
    BadInput(
        "new entries hold a dict",
        lambda s: s.save_delta("seed", SessionDelta(_wrong([{"id": "x"}]))),
        InvalidInputError,
    ),
    BadInput(
        "snapshot a delta",
        lambda s: s.save("seed", _wrong(SessionDelta([Entry("x")]))),
        InvalidInputError,
    ),
    BadInput(
        "snapshot entries hold a str",
        lambda s: s.save("seed", SessionData(_wrong(["a"]))),
        InvalidInputError,
    ),
    # -- session ids
    BadInput("session id empty", lambda s: s.save_delta("", _delta(_entry())), InvalidIdError),
    BadInput(
        "session id 256 bytes", lambda s: s.save_delta("s" * 256, _delta(_entry())), InvalidIdError
    ),
    BadInput(
        "session id SQL, too long",
        lambda s: s.save_delta(DROP * 10, _delta(_entry())),
        InvalidIdError,
    ),
    BadInput(
        "session id with NUL", lambda s: s.save_delta("se\x00ed", _delta(_entry())), InvalidIdError
    ),
    BadInput(
        "session id None", lambda s: s.save_delta(_wrong(None), _delta(_entry())), InvalidIdError
    ),
    BadInput("session id int", lambda s: s.save_delta(_wrong(1), _delta(_entry())), InvalidIdError),
    BadInput(
        "session id SQL on save",
        lambda s: s.save("x" * 200 + DROP * 3, SessionData([])),
        InvalidIdError,
    ),
    # -- versions and other arguments
    BadInput(
        "expected version stale",
        lambda s: s.save_delta("seed", _delta(_entry()), expected_version=1),
        ConcurrencyError,
    ),
    BadInput(
        "expected version 0, session exists",
        lambda s: s.save_delta("seed", _delta(_entry()), expected_version=0),
        ConcurrencyError,
    ),
    BadInput(
        "expected version -1",
        lambda s: s.save_delta("seed", _delta(_entry()), expected_version=-1),
        InvalidInputError,
    ),
    BadInput(
        "expected version str",
        lambda s: s.save_delta("seed", _delta(_entry()), expected_version=_wrong("3")),
        InvalidInputError,
    ),
    BadInput(
        "expected version bool",
        lambda s: s.save_delta("seed", _delta(_entry()), expected_version=True),
        InvalidInputError,
    ),
    BadInput(
        "expected version float",
        lambda s: s.save("seed", SessionData([]), expected_version=_wrong(3.0)),
        InvalidInputError,
    ),
    BadInput(
        "load at version str", lambda s: s.load("seed", at_version=_wrong("1")), InvalidInputError
    ),
    BadInput("load at version -1", lambda s: s.load("seed", at_version=-1), InvalidInputError),
    BadInput("load raw str", lambda s: s.load("seed", raw=_wrong("no")), InvalidInputError),
    BadInput("load raw None", lambda s: s.load("seed", raw=_wrong(None)), InvalidInputError),
    BadInput(
        "list updated_before naive",
        lambda s: s.list_sessions(updated_before=datetime(2024, 1, 1)),
        InvalidInputError,
    ),
    BadInput("list limit 0", lambda s: s.list_sessions(limit=0), InvalidInputError),
    BadInput("list limit str", lambda s: s.list_sessions(limit=_wrong("10")), InvalidInputError),
    BadInput("list cursor forged", lambda s: s.list_sessions(cursor=DROP), InvalidInputError),
    BadInput("list prefix int", lambda s: s.list_sessions(prefix=_wrong(1)), InvalidInputError),
    # -- sessions that are not there, or already are
    BadInput("path of a missing SQL-named session", lambda s: s.path(DROP), SessionNotFoundError),
    BadInput("purge a missing session", lambda s: s.purge(DROP), SessionNotFoundError),
    BadInput("fork a missing session", lambda s: s.fork(DROP, "copy"), SessionNotFoundError),
    BadInput(
        "fork onto an existing session", lambda s: s.fork("seed", "other"), SessionExistsError
    ),
    BadInput(
        "fork at an unknown entry",
        lambda s: s.fork("seed", "copy", at_entry_id=DROP),
        InvalidLeafError,
    ),
    BadInput(
        "fork at a tombstoned entry",
        lambda s: s.fork("seed", "copy", at_entry_id="c"),
        InvalidLeafError,
    ),
    BadInput("fork onto an invalid id", lambda s: s.fork("seed", ""), InvalidIdError),
    BadInput("path to an unknown leaf", lambda s: s.path("seed", leaf_id=DROP), InvalidLeafError),
    BadInput(
        "load a version never written", lambda s: s.load("seed", at_version=99), InvalidInputError
    ),
]


def _seed(store: eventlog.Store) -> None:
    store.save_delta("seed", _delta(Entry("a"), Entry("b", "a"), Entry("c", "b"), leaf_id="c"))
    store.save_delta("seed", _delta(removed_entry_ids=["c"], leaf_id="b", metadata={"m": 1}))
    store.save_delta("other", _delta(Entry("o", payload={"q": DROP})))


def _state(backend: Backend) -> tuple[object, ...]:
    store = backend.store
    loads = tuple(store.load(sid, raw=True) for sid in ("seed", "other", "fresh", "copy", DROP))
    return loads, store.list_sessions(limit=1000), backend.count_rows()


def _outcome(case: BadInput, store: eventlog.Store) -> str | None:
    """None if the case raised its error; otherwise what happened instead."""
    try:
        case.call(store)
    except case.error:
        return None
    except Exception as error:  # a wrong type: an eventlog error of another kind, or a raw one
        return f"raised {type(error).__module__}.{type(error).__name__}: {str(error)[:120]}"
    return "raised nothing"


def test_bad_input_catalog_gets_typed_errors_and_writes_nothing(backend: Backend) -> None:
    assert len(CASES) >= 50
    assert len({case.name for case in CASES}) == len(CASES)
    _seed(backend.store)
    before = _state(backend)
    wrong: dict[str, str] = {}
    changed: list[str] = []
    with measured("8. bad-input catalog", backend.name) as figures:
        for case in CASES:
            outcome = _outcome(case, backend.store)
            if outcome is not None:
                wrong[case.name] = outcome
            if _state(backend) != before:
                changed.append(case.name)
                before = _state(backend)
        figures.operations = figures.faults = len(CASES)
        figures.lost = len(changed)  # a case that changed stored state
        figures.notes = f"{len(CASES) - len(wrong)}/{len(CASES)} typed errors as expected"
    assert not wrong, wrong
    assert not changed, changed


def test_hostile_strings_where_valid_are_plain_text(backend: Backend) -> None:
    store = backend.store
    _seed(store)
    for text in HOSTILE:
        store.save_delta(
            text,
            _delta(Entry(text, None, text, text, {text: text}), leaf_id=text, metadata={text: 1}),
        )
    for text in HOSTILE:
        loaded = store.load(text)
        assert loaded is not None and [e.id for e in loaded.entries] == [text]
        assert loaded.entries[0] == Entry(text, None, text, text, {text: text})
        assert loaded.leaf_id == text and loaded.metadata == {text: 1}
        # A prefix is matched literally: % and _ are not wildcards.
        listed = [info.session_id for info in store.list_sessions(prefix=text).items]
        assert listed == [text], (text, listed)
    seeded = store.load("seed")
    assert seeded is not None and [e.id for e in seeded.entries] == ["a", "b"]


def test_the_catalog_check_catches_a_write(backend: Backend) -> None:
    """Broken on purpose: a case that writes must show up as a changed state."""
    _seed(backend.store)
    before = _state(backend)
    with measured("8. broken: a case that writes", backend.name, broken_variant=True) as figures:
        backend.store.save_delta("seed", _delta(Entry("sneaked", "b")))
        figures.operations = figures.faults = 1
        figures.lost = int(_state(backend) != before)
    assert figures.lost == 1


# -- hostile values in every argument of every call -------------------------------


class _NoOffset(tzinfo):
    """A tzinfo that is set but gives no offset: the datetime is naive all the same."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


class _BrokenOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        raise RuntimeError("no offset today")


_HUGE = "x" * (1 << 20)
HOSTILE_VALUES: dict[str, object] = {
    "lone surrogate": "\ud800",
    "trailing lone surrogate": "ok\udfff",
    "NUL": "a\x00b",
    "empty str": "",
    "huge str": _HUGE,
    "xff in RawJSON": RawJSON(b'{"a":"\xff"}'),
    "RawJSON nested 5000": RawJSON(b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"),
    "dict nested 5000": _nested(5000),
    "1e400": float("1e400"),
    "NaN": math.nan,
    "-inf": -math.inf,
    "2**63": 2**63,
    "2**63-1": 2**63 - 1,
    "2**64": 2**64,
    "-2**63-1": -(2**63) - 1,
    "-1": -1,
    "True": True,
    "False": False,
    "float": 1.0,
    "str of int": "1",
    "bytes": b"seed",
    "list": ["a"],
    "tuple": ("a",),
    "dict": {"a": 1},
    "object": object(),
    "naive datetime": datetime(2024, 1, 1),
    "datetime without offset": datetime(2024, 1, 1, tzinfo=_NoOffset()),
    "datetime with broken offset": datetime(2024, 1, 1, tzinfo=_BrokenOffset()),
    "datetime.max": datetime.max.replace(tzinfo=UTC),
}

_GOOD_ENTRY: dict[str, Any] = {
    "id": "n1",
    "parent_id": "a",
    "kind": "message",
    "timestamp": "2024",
    "payload": {},
}


def _keyed(key: object) -> dict[Any, Any]:
    """A dict with `key` as its key; an unhashable value goes in a key-like place instead."""
    try:
        return {key: 1}
    except Exception:  # unhashable, or its hash failed (a datetime asks its tzinfo)
        return {"k": {"nested": [key]}}


def _entry_with(field: str, value: object) -> Entry:
    return Entry(**{**_GOOD_ENTRY, field: value})


def _delta_with(field: str, value: object) -> SessionDelta:
    fields: dict[str, Any] = {"new_entries": [Entry("n1", "b")], "leaf_id": "n1"}
    return SessionDelta(**{**fields, field: value})


def _data_with(field: str, value: object) -> SessionData:
    fields: dict[str, Any] = {"entries": [Entry("a"), Entry("b", "a")], "leaf_id": "b"}
    return SessionData(**{**fields, field: value})


# Each slot: a call with every argument valid except the one `value` goes to.
SLOTS: dict[str, Callable[[eventlog.Store, Any], object]] = {
    "save_delta session_id": lambda s, v: s.save_delta(v, _delta(_entry())),
    "save_delta delta": lambda s, v: s.save_delta("seed", v),
    "save_delta expected_version": lambda s, v: s.save_delta(
        "seed", _delta(Entry("n1", "b")), expected_version=v
    ),
    "save_delta new_entries": lambda s, v: s.save_delta("seed", _delta_with("new_entries", v)),
    "save_delta new_entries item": lambda s, v: s.save_delta(
        "seed", _delta_with("new_entries", [v])
    ),
    "save_delta removed_entry_ids": lambda s, v: s.save_delta(
        "seed", _delta_with("removed_entry_ids", v)
    ),
    "save_delta removed id": lambda s, v: s.save_delta(
        "seed", _delta_with("removed_entry_ids", [v])
    ),
    "save_delta leaf_id": lambda s, v: s.save_delta("seed", _delta_with("leaf_id", v)),
    "save_delta metadata": lambda s, v: s.save_delta("seed", _delta_with("metadata", v)),
    "save_delta metadata value": lambda s, v: s.save_delta(
        "seed", _delta_with("metadata", {"k": v})
    ),
    **{
        f"save_delta entry {field}": lambda s, v, field=field: s.save_delta(
            "seed", _delta(_entry_with(field, v))
        )
        for field in _GOOD_ENTRY
    },
    "save_delta payload value": lambda s, v: s.save_delta(
        "seed", _delta(_entry_with("payload", {"k": v}))
    ),
    "save_delta payload key": lambda s, v: s.save_delta(
        "seed", _delta(_entry_with("payload", _keyed(v)))
    ),
    "save session_id": lambda s, v: s.save(v, _data_with("leaf_id", "b")),
    "save data": lambda s, v: s.save("seed", v),
    "save expected_version": lambda s, v: s.save(
        "seed", _data_with("leaf_id", "b"), expected_version=v
    ),
    "save entries": lambda s, v: s.save("seed", _data_with("entries", v)),
    "save leaf_id": lambda s, v: s.save("seed", _data_with("leaf_id", v)),
    "save metadata": lambda s, v: s.save("seed", _data_with("metadata", v)),
    **{
        f"save entry {field}": lambda s, v, field=field: s.save(
            "seed", SessionData([Entry("a"), _entry_with(field, v)], leaf_id="a")
        )
        for field in _GOOD_ENTRY
    },
    "load session_id": lambda s, v: s.load(v),
    "load at_version": lambda s, v: s.load("seed", at_version=v),
    "load raw": lambda s, v: s.load("seed", raw=v),
    "path session_id": lambda s, v: s.path(v),
    "path leaf_id": lambda s, v: s.path("seed", leaf_id=v),
    "delete session_id": lambda s, v: s.delete(v),
    "delete expected_version": lambda s, v: s.delete("seed", expected_version=v),
    "list_sessions prefix": lambda s, v: s.list_sessions(prefix=v),
    "list_sessions updated_before": lambda s, v: s.list_sessions(updated_before=v),
    "list_sessions limit": lambda s, v: s.list_sessions(limit=v),
    "list_sessions cursor": lambda s, v: s.list_sessions(cursor=v),
    "fork source_id": lambda s, v: s.fork(v, "copy"),
    "fork new_id": lambda s, v: s.fork("seed", v),
    "fork at_entry_id": lambda s, v: s.fork("seed", "copy", at_entry_id=v),
    "purge session_id": lambda s, v: s.purge(v),
}


def test_hostile_values_in_every_argument_get_typed_errors_and_write_nothing(
    backend: Backend,
) -> None:
    """Each hostile value in each argument: success, or an EventlogError that wrote nothing."""
    _seed(backend.store)
    before = _state(backend)
    leaked: dict[str, str] = {}
    changed: list[str] = []
    calls = 0
    with measured("8. hostile values in every argument", backend.name) as figures:
        for slot, call in SLOTS.items():
            for name, value in HOSTILE_VALUES.items():
                calls += 1
                case = f"{slot} = {name}"
                try:
                    call(backend.store, value)
                except EventlogError:
                    if _state(backend) != before:
                        changed.append(case)
                        before = _state(backend)
                    continue
                except BaseException as error:
                    leaked[case] = f"{type(error).__module__}.{type(error).__name__}"
                    before = _state(backend)
                    continue
                before = _state(backend)  # a value that was valid there may write
        figures.operations = figures.faults = calls
        figures.lost = len(changed)
        figures.notes = f"{calls - len(leaked)}/{calls} calls gave a result or an eventlog error"
    assert calls >= 1000
    assert not leaked, "\n".join(f"{case}: {error}" for case, error in leaked.items())
    assert not changed, changed
