"""What a store remembers of its last `save` never changes what a `save` decides.

`_core.snapshot_memo`: an entry whose header and payload bytes equal those of
the last snapshot's entry is not checked and hashed again. These properties
hold that to the careful path: a look-alike payload (`True` for `1`, `1.0` for
`1`, keys in another order, an escape for a raw character, NaN for null, a
tuple for a list, an int key for its string), given as a new value or made by
changing the remembered caller's dict in place, is prepared exactly as without
the memo; and on SQLite files, a write by another store between two saves is
never hidden by the records the first store remembers.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import Entry, RawJSON, SessionData, Store
from eventlog._core import planning
from eventlog._core.codec import (
    DEFAULT_MAX_ENTRY_BYTES,
    prepare_snapshot,
    prepare_snapshot_known,
)
from eventlog._core.known_snapshot import known_prefix
from eventlog.errors import EventlogError

from .strategies import ID_POOL, json_objects, payloads, raw_json_objects

quick = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SID = "memo"

Change = Callable[[Any], Any]


def _swaps(value: Any) -> list[Any]:
    """Scalars that Python takes as equal to `value` (or that encode alike) but
    are other content or not allowed JSON."""
    if value is True:
        return [1, 1.0]
    if value is False:
        return [0, 0.0]
    if value is None:
        return [float("nan"), float("inf")]
    if type(value) is int:
        return [float(value), bool(value)] if value in (0, 1) else [float(value)]
    if type(value) is float and value.is_integer() and abs(value) < 2**53:
        return [int(value)]
    return []


def _changes(value: Any) -> list[Change]:
    """Each change of one place in `value`, as a function that makes it in place
    on a container shaped like `value` (and returns the container)."""
    found: list[Change] = []
    if isinstance(value, dict):
        keys = list(value)
        if len(keys) > 1:

            def reorder(target: dict[Any, Any]) -> dict[Any, Any]:
                items = list(target.items())
                target.clear()
                target.update(reversed(items))
                return target

            found.append(reorder)
        for key in keys:
            if key.isdigit() and len(key) < 10:

                def int_key(target: dict[Any, Any], key: str = key) -> dict[Any, Any]:
                    items = [(int(k) if k == key else k, v) for k, v in target.items()]
                    target.clear()
                    target.update(items)
                    return target

                found.append(int_key)
            found.extend(_inside(key, change) for change in _changes(value[key]))
    elif isinstance(value, list):
        found.extend(
            _inside(index, change) for index, item in enumerate(value) for change in _changes(item)
        )
        for index, item in enumerate(value):
            if isinstance(item, list):

                def tupled(target: list[Any], index: int = index) -> list[Any]:
                    target[index] = tuple(target[index])
                    return target

                found.append(tupled)
    return found


def _inside(place: Any, change: Change) -> Change:
    """`change` made at `place` of a container, or a scalar swapped there."""

    def apply(target: Any) -> Any:
        target[place] = change(target[place])
        return target

    return apply


def _scalar_changes(value: Any) -> list[Change]:
    """Swaps of the scalars of `value` (the places `_changes` does not reach)."""
    found: list[Change] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.extend(_inside(key, change) for change in _scalar_changes(item))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_inside(index, change) for change in _scalar_changes(item))
    else:
        found.extend((lambda _, swap=swap: swap) for swap in _swaps(value))
    return found


@st.composite
def look_alikes(draw: st.DrawFn) -> tuple[dict[str, Any], Change]:
    """A payload (holding the scalars look-alikes are made of) and one change of it."""
    payload = draw(json_objects())
    payload[draw(st.sampled_from(["1", "k"]))] = draw(
        st.sampled_from([True, False, None, 1, 0, 1.0, 0.0, 2, 2.0, [1, [True]], {"2": None}])
    )
    changes = _changes(payload) + _scalar_changes(payload)
    return payload, draw(st.sampled_from(changes))


def _entry(payload: Any, *, kind: str = "message") -> Entry:
    return Entry("e1", "e0", kind, "2026-01-01T00:00:00Z", payload)


def _snapshot(*entries: Entry) -> SessionData:
    root = Entry("e0", None, "message", None, {"root": True})
    return SessionData([root, *entries], leaf_id=entries[-1].id if entries else "e0")


def _prepared(data: SessionData, known: Any = None) -> Any:
    """What preparing gives (entries and leaf), or the error it raises (class and where)."""
    try:
        if known is None:
            prepared = prepare_snapshot(SID, data, max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES)
        else:
            prepared, _ = prepare_snapshot_known(
                SID, data, max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES, known=known
            )
    except EventlogError as error:
        return type(error), getattr(error, "where", None)
    return prepared.entries, prepared.leaf_id


def _known(data: SessionData) -> Any:
    _, known = prepare_snapshot_known(SID, data, max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES, known={})
    return known


@quick
@given(look_alikes(), st.booleans())
def test_a_look_alike_payload_is_prepared_as_without_the_memo(
    case: tuple[dict[str, Any], Change], in_place: bool
) -> None:
    payload, change = case
    known = _known(_snapshot(_entry(payload)))
    # In place: the caller changes the very dict the memo saw (it must hold its own copy).
    changed = change(payload if in_place else copy.deepcopy(payload))
    data = _snapshot(_entry(changed))
    assert _prepared(data, known) == _prepared(data)


@quick
@given(payloads(), payloads(), st.sampled_from(["message", "custom"]))
def test_any_second_payload_is_prepared_as_without_the_memo(
    first: dict[str, Any] | RawJSON, second: dict[str, Any] | RawJSON, kind: str
) -> None:
    known = _known(_snapshot(_entry(first)))
    for data in (_snapshot(_entry(second, kind=kind)), _snapshot(_entry(copy.deepcopy(first)))):
        assert _prepared(data, known) == _prepared(data)


@quick
@given(raw_json_objects())
def test_raw_json_escapes_are_other_content(raw: RawJSON) -> None:
    escaped = RawJSON(bytes(raw).replace(b'"', b'"\\u0065', 1)) if b'"' in raw else raw
    with_e = RawJSON(bytes(raw).replace(b'"', b'"e', 1)) if b'"' in raw else raw
    known = _known(_snapshot(_entry(with_e)))
    for data in (_snapshot(_entry(escaped)), _snapshot(_entry(with_e))):
        assert _prepared(data, known) == _prepared(data)
    if escaped != with_e:
        assert _prepared(_snapshot(_entry(escaped)), known) != _prepared(
            _snapshot(_entry(with_e)), known
        )


def test_a_write_by_another_store_is_never_hidden(tmp_path: Path) -> None:
    """The first store remembers e2 live; the second removes it and changes e1;
    the first saves its snapshot again: both come back as it says."""
    url = f"sqlite:///{tmp_path / 'memo.db'}"
    with eventlog.connect(url) as first, eventlog.connect(url) as second:
        e1 = Entry("e1", "e0", "message", None, {"n": 1})
        e2 = Entry("e2", "e1", "message", None, {"n": 2})
        mine = _snapshot(e1, e2)
        first.save(SID, mine)
        first.save(SID, mine)  # the memo is used (and stays right) on a save that changes nothing
        second.save(SID, _snapshot(Entry("e1", "e0", "message", None, {"n": True})))
        result = first.save(SID, mine)
        assert set(result.appended) == {"e1", "e2"}
        for store in (first, second):
            loaded = store.load(SID)
            assert loaded is not None
            assert loaded.entries == mine.entries
            assert loaded.leaf_id == "e2"


@pytest.mark.parametrize("value", [float("nan"), (1, 2), {1: "x"}])
def test_an_invalid_value_that_encodes_like_the_stored_one_is_refused(
    tmp_path: Path, value: Any
) -> None:
    stored: dict[str, Any] = {"v": None if isinstance(value, float) else [1, 2]}
    if isinstance(value, dict):
        stored = {"v": {"1": "x"}}
    with eventlog.connect(f"sqlite:///{tmp_path / 'memo.db'}") as store:
        store.save(SID, _snapshot(_entry(stored)))
        with pytest.raises(eventlog.InvalidPayloadError):
            store.save(SID, _snapshot(_entry({"v": value})))


_SMALL_PAYLOADS = st.sampled_from(
    [
        {"v": 1},
        {"v": True},
        {"v": 1.0},
        {"v": None},
        {"a": 1, "b": 2},
        {"b": 2, "a": 1},
        {"t": "é"},
        RawJSON(b'{"t":"\\u00e9"}'),
        RawJSON(b'{"t":"\xc3\xa9"}'),
        RawJSON(b'{"v": 1}'),
    ]
)


@st.composite
def _small_snapshots(draw: st.DrawFn, ids: list[str]) -> SessionData:
    entries = [
        Entry(
            entry_id,
            draw(st.sampled_from([None, *ids[:index]])),
            draw(st.sampled_from(["message", "custom"])),
            None,
            draw(_SMALL_PAYLOADS),
        )
        for index, entry_id in enumerate(ids)
    ]
    return SessionData(entries, leaf_id=entries[-1].id if entries else None)


@st.composite
def _save_sequences(draw: st.DrawFn) -> list[SessionData]:
    """Snapshots over a shared pool of ids with look-alike payloads; some extend
    the one before (the common save)."""
    pool = st.lists(st.sampled_from(ID_POOL), unique=True, max_size=6)
    snapshots = [draw(_small_snapshots(draw(pool)))]
    for _ in range(draw(st.integers(1, 4))):
        before = [entry.id for entry in snapshots[-1].entries]
        if draw(st.booleans()):
            added = [i for i in draw(pool) if i not in before]
            grown = draw(_small_snapshots([*before, *added])).entries[len(before) :]
            entries = [*snapshots[-1].entries, *grown]
            snapshots.append(SessionData(entries, leaf_id=entries[-1].id if entries else None))
        else:
            snapshots.append(draw(_small_snapshots(draw(pool))))
    return snapshots


@pytest.fixture(scope="module")
def store_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Store]]:
    """A store that remembers its saves and one that does not, on two files."""
    directory = tmp_path_factory.mktemp("memo")
    with (
        eventlog.connect(f"sqlite:///{directory}/with.db", synchronous="normal") as remembering,
        eventlog.connect(f"sqlite:///{directory}/without.db", synchronous="normal") as forgetting,
    ):
        forgetting._snapshot_memo = None  # type: ignore[attr-defined]
        yield remembering, forgetting


_sessions = itertools.count()


@settings(quick, max_examples=40)
@given(_save_sequences())
def test_saves_with_the_memo_do_what_saves_without_it_do(
    store_pair: tuple[Store, Store], snapshots: list[SessionData]
) -> None:
    session_id = f"pair-{next(_sessions)}"
    for data in snapshots:
        outcomes: list[object] = []
        for store in store_pair:
            try:
                outcomes.append(store.save(session_id, data))
            except EventlogError as error:
                outcomes.append(type(error))
        assert outcomes[0] == outcomes[1]
        loaded = [store.load(session_id) for store in store_pair]
        assert loaded[0] == loaded[1]


@quick
@given(look_alikes(), st.booleans())
def test_a_look_alike_before_a_new_entry_is_prepared_as_without_the_memo(
    case: tuple[dict[str, Any], Change], in_place: bool
) -> None:
    """The common save (the last snapshot, then a new turn) takes the remembered
    entries whole (`known_prefix`); a look-alike among them turns that down."""
    payload, change = case
    known = _known(_snapshot(_entry(payload)))
    changed = change(payload if in_place else copy.deepcopy(payload))
    data = _snapshot(_entry(changed), Entry("e2", "e1", "message", None, {"n": 2}))
    assert _prepared(data, known) == _prepared(data)


class _LyingStr(str):
    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


class _Dict(dict[str, Any]):
    pass


class _Entry(Entry):
    pass


@pytest.mark.parametrize(
    "swap",
    [
        lambda e: Entry(_LyingStr(e.id), e.parent_id, e.kind, e.timestamp, e.payload),
        lambda e: Entry(e.id, e.parent_id, e.kind, e.timestamp, _Dict(e.payload)),
        lambda e: _Entry(e.id, e.parent_id, e.kind, e.timestamp, e.payload),
        lambda e: Entry(e.id, e.parent_id, e.kind, e.timestamp, {"n": float("nan")}),
        lambda e: Entry(e.id, e.parent_id, e.kind, e.timestamp, {"n": (1,)}),
    ],
)
def test_the_remembered_entries_are_not_taken_whole_for_look_alike_types(
    swap: Callable[[Entry], Entry],
) -> None:
    first = _entry({"n": None})
    known = _known(_snapshot(first))
    data = _snapshot(swap(first), Entry("e2", "e1", "message", None, {"n": 2}))
    assert known is not None and known_prefix(data.entries, known) == 0
    assert _prepared(data, known) == _prepared(data)


def test_the_remembered_entries_are_taken_whole_when_unchanged() -> None:
    first = _entry({"n": 1, "t": [True, 1.5]})
    known = _known(_snapshot(first))
    data = _snapshot(_entry(copy.deepcopy(first.payload)), Entry("e2", "e1", "custom", None, {}))
    assert known is not None and known_prefix(data.entries, known) == 2
    assert _prepared(data, known) == _prepared(data)
    changed = _snapshot(_entry({"n": 1, "t": [1, 1.5]}), Entry("e2", "e1", "custom", None, {}))
    assert known_prefix(changed.entries, known) == 0


@quick
@given(_save_sequences())
def test_a_known_snapshot_grown_from_the_last_is_the_one_made_afresh(
    snapshots: list[SessionData],
) -> None:
    """What a save remembers is the same whether its entries were taken from
    the last known snapshot (`remember_snapshot(after=...)`) or all prepared."""
    known: Any = {}
    for data in snapshots:
        try:
            _, grown = prepare_snapshot_known(
                SID, data, max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES, known=known
            )
            _, fresh = prepare_snapshot_known(
                SID, data, max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES, known={}
            )
        except EventlogError:
            continue
        assert grown is not None and fresh is not None
        assert grown.by_id == fresh.by_id
        assert (grown.encoded, grown.headers, grown.payloads) == (
            fresh.encoded,
            fresh.headers,
            fresh.payloads,
        )
        assert (grown.plain, grown.size) == (fresh.plain, fresh.size)
        known = grown


def test_a_save_that_takes_the_last_snapshot_whole_does_not_compare_the_live_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The live log the memo holds is the last snapshot: a save that starts with
    it is planned as an append without comparing them, and lands the same."""
    compared: list[int] = []
    real = planning._extends

    def counted(entries: Any, live: Any) -> bool:
        compared.append(len(live))
        return real(entries, live)

    monkeypatch.setattr(planning, "_extends", counted)
    e2 = Entry("e2", "e1", "message", None, {"n": 2})
    with eventlog.connect(f"sqlite:///{tmp_path / 'memo.db'}") as store:
        store.save(SID, _snapshot(_entry({"n": 1})))
        result = store.save(SID, _snapshot(_entry({"n": 1}), e2))
        assert result.appended == ("e2",) and result.skipped == ("e0", "e1")
        assert compared == [0]  # only the first save, on an empty log
        store.save(SID, _snapshot(_entry({"n": True}), e2))  # e1 changed: compared
        assert compared == [0, 3]
        loaded = store.load(SID)
        assert loaded is not None
        assert loaded.entries == _snapshot(_entry({"n": True}), e2).entries
