"""Property-based contract tests: random calls on a store (needs `hypothesis`).

Kept apart from the other contract classes so that `eventlog.testing` itself
needs only pytest; import this module where hypothesis is installed.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import (
    Entry,
    EventlogError,
    InvalidPayloadError,
    RawJSON,
    SessionData,
    SessionDelta,
    Store,
)

from .._backend import BackendLike
from ._helpers import delta

_FOREIGN = (sqlite3.Error, msgspec.MsgspecError, RecursionError, TypeError, KeyError)

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=8),
)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), inner, max_size=3),
        st.tuples(inner),
    ),
    max_leaves=8,
)
_TRICKY_RAW = [
    b"{}",
    b'{"a": 1, "a": 2}',
    b'{"a": "\xff"}',
    b"\xff\xfe",
    b'{"a": NaN}',
    b'{"\\ud800": 1}',
    b'{"a": "\\u0000"}',
    b"[]",
]
_good_ident = st.text(alphabet="abc", min_size=1, max_size=2)
_ident = st.one_of(
    _good_ident,
    _good_ident,
    _good_ident,
    st.text(max_size=6),
    st.text(min_size=250, max_size=260),
    st.none(),
    st.integers(),
    st.binary(max_size=4),
)
_entry = st.builds(
    Entry,
    id=_ident,
    parent_id=st.one_of(st.none(), _good_ident, _ident),
    kind=st.one_of(st.just("message"), st.text(max_size=4), st.none()),
    timestamp=st.one_of(st.none(), st.text(max_size=4), st.integers()),
    payload=st.one_of(
        _json,
        st.binary(max_size=20).map(RawJSON),
        st.sampled_from(_TRICKY_RAW).map(RawJSON),
    ),
)
_delta = st.builds(
    SessionDelta,
    new_entries=st.lists(_entry, max_size=3),
    removed_entry_ids=st.lists(_ident, max_size=2),
    leaf_id=st.one_of(_ident, st.just(msgspec.UNSET)),
    metadata=st.one_of(_json, st.just(msgspec.UNSET)),
)
_fuzz_counter = itertools.count()


_payload = st.one_of(
    _json,
    st.binary(max_size=20).map(RawJSON),
    st.sampled_from(_TRICKY_RAW).map(RawJSON),
    st.lists(st.sampled_from(_TRICKY_RAW), min_size=1, max_size=3).map(
        lambda parts: RawJSON(b'{"k": [' + b", ".join(parts) + b"]}")
    ),
)

_counter = itertools.count()

_snapshot = st.lists(
    st.tuples(st.sampled_from("abcdefg"), st.sampled_from(["x", "y"]), st.booleans()),
    max_size=7,
    unique_by=lambda item: item[0],
).map(
    lambda items: SessionData(
        entries=[
            Entry(id=eid, parent_id="a" if rooted and eid != "a" else None, payload={"v": text})
            for eid, text, rooted in items
        ],
        leaf_id=items[-1][0] if items else None,
        metadata={"n": len(items)},
    )
)


class ErrorPropertiesContract:
    """Random calls raise only eventlog errors, and a rejected call writes nothing."""

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        session_id=st.one_of(_good_ident, _ident),
        first=_delta,
        second=_delta,
        expected=st.none() | st.integers(-1, 3),
    )
    def test_only_eventlog_errors_escape(
        self,
        backend: BackendLike,
        store: Store,
        session_id: Any,
        first: SessionDelta,
        second: SessionDelta,
        expected: int | None,
    ) -> None:
        if isinstance(session_id, str) and session_id:
            session_id = f"{session_id}-{next(_fuzz_counter)}"
        for call in (
            lambda: store.save_delta(session_id, first),
            lambda: store.save_delta(session_id, second, expected_version=expected),
            lambda: store.save(session_id, SessionData(entries=list(first.new_entries))),
            lambda: store.load(session_id),
            lambda: store.path(session_id),
            lambda: store.purge(session_id),
        ):
            rows = backend.count_rows()
            try:
                call()
            except EventlogError as error:
                assert not isinstance(error, _FOREIGN)
                if isinstance(error, eventlog.InvalidInputError | eventlog.ConflictError):
                    assert backend.count_rows() == rows

    @settings(
        max_examples=200,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(payload=_payload, metadata=_payload)
    def test_only_eventlog_errors_escape_for_any_payload(
        self, backend: BackendLike, store: Store, payload: Any, metadata: Any
    ) -> None:
        sid = f"fuzz-{next(_fuzz_counter)}"
        rows = backend.count_rows()
        calls: list[Callable[[], object]] = [
            lambda: store.save_delta(sid, delta(Entry(id="p", payload=payload))),
            lambda: store.save_delta(sid, delta(metadata=metadata)),
            lambda: store.save(sid, SessionData(entries=[Entry(id="q", payload=payload)])),
        ]
        for call in calls:
            try:
                call()
            except InvalidPayloadError:
                assert backend.count_rows() == rows
            else:
                rows = backend.count_rows()


class SaveReconcilePropertiesContract:
    """Random snapshot sequences: each load equals the snapshot saved."""

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(snapshots=st.lists(_snapshot, min_size=1, max_size=5))
    def test_load_equals_every_saved_snapshot(
        self, store: Store, snapshots: list[SessionData]
    ) -> None:
        sid = f"prop-{next(_counter)}"
        history: list[tuple[int, SessionData]] = []
        for data in snapshots:
            result = store.save(sid, data)
            assert store.load(sid) == data
            history.append((result.version, data))
        for version, data in history:
            at: Any = store.load(sid, at_version=version)
            assert at == data
