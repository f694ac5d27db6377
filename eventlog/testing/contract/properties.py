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


# -- the change feed ------------------------------------------------------------

_IDS = ["a", "b", "c", "d", "e"]
_some_ids = st.lists(st.sampled_from(_IDS), max_size=4, unique=True)
_text = st.sampled_from(["x", "y"])
_step = st.one_of(
    st.tuples(
        st.just("delta"),
        st.lists(st.tuples(st.sampled_from(_IDS), _text), max_size=3),
        _some_ids,
        st.booleans(),
    ),
    st.tuples(st.just("save"), st.lists(st.tuples(st.sampled_from(_IDS), _text), max_size=5)),
    st.tuples(st.just("fork")),
    st.tuples(st.just("purge")),
)


def _run_step(store: Store, sid: str, step: tuple[Any, ...], forks: list[str]) -> None:
    """One random write; the ones the contract rejects (conflicts, bad leaves) write nothing."""
    kind = step[0]
    try:
        if kind == "delta":
            _, new, removed, with_metadata = step
            entries = [Entry(i, payload={"t": t}) for i, t in dict(new).items()]
            removed = [i for i in removed if i not in dict(new)]  # both: InvalidInputError
            metadata: Any = {"n": len(removed)} if with_metadata else eventlog.UNSET
            leaf = entries[-1].id if entries else eventlog.UNSET
            store.save_delta(sid, delta(*entries, removed=removed, leaf=leaf, metadata=metadata))
        elif kind == "save":
            entries = [Entry(i, payload={"t": t}) for i, t in dict(step[1]).items()]
            leaf_id = entries[0].id if entries else None
            store.save(sid, SessionData(entries, leaf_id=leaf_id, metadata={"s": len(entries)}))
        elif kind == "fork":
            fork_id = f"{sid}-fork{len(forks)}"
            store.fork(sid, fork_id)
            forks.append(fork_id)
        else:
            store.purge(sid)
    except eventlog.SessionNotFoundError:
        pass
    except (eventlog.IdConflictError, eventlog.InvalidLeafError):
        pass


def _check_folds(store: Store, sid: str) -> None:
    """Folding the changes from the purge floor equals load at every version."""
    current = store.load(sid)
    if current is None:
        assert store.changes(sid).items == []
        return
    floor = 0
    while floor < current.version:  # the floor: the lowest after_version accepted
        try:
            store.changes(sid, after_version=floor, limit=1)
            break
        except eventlog.HistoryPurgedError:
            floor += 1
    start = None if floor == 0 else store.load(sid, at_version=floor)
    changes: list[eventlog.Change] = []
    after: int | None = floor
    while after is not None:  # small pages, so paging is part of the property
        page = store.changes(sid, after_version=after, limit=2)
        changes += page.items
        after = page.next_version
    assert [change.version for change in changes] == list(range(floor + 1, current.version + 1))
    for count in range(1, len(changes) + 1):
        folded = eventlog.fold_changes(changes[:count], start=start)
        assert folded == store.load(sid, at_version=floor + count)
    assert eventlog.fold_changes(changes, start=start) == current


class ChangesPropertiesContract:
    """Random histories: the folded changes equal `load(at_version=v)` for every v."""

    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(steps=st.lists(_step, min_size=1, max_size=8))
    def test_folded_changes_equal_load_at_every_version(
        self, store: Store, steps: list[tuple[Any, ...]]
    ) -> None:
        sid = f"changes-{next(_counter)}"
        forks: list[str] = []
        for step in steps:
            _run_step(store, sid, step, forks)
        for session_id in (sid, *forks):
            _check_folds(store, session_id)
