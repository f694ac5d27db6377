"""Properties of save, save_delta and load on the memory store, and of the core (planning, folding).

DESIGN.md sections 1-2: `load(save(s)) == s` for any valid snapshot (exact bytes
with `raw=True`), an identical save changes nothing, reconcile reaches any snapshot
from any stored state, a retried delta changes nothing after the first time, a
one-entry difference writes only that entry, and content is the encoded bytes.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

import eventlog
from eventlog import (
    Entry,
    IdConflictError,
    InvalidLeafError,
    RawJSON,
    SessionData,
    SessionDelta,
    Store,
)
from eventlog._core.codec import DEFAULT_MAX_ENTRY_BYTES, prepare_snapshot
from eventlog._core.folding import entries_from_records, fold_session, walk_path
from eventlog._core.planning import plan_reconcile
from eventlog._core.records import Record, SessionState
from eventlog.errors import CorruptionError

from .strategies import (
    ID_POOL,
    compact_bytes,
    entries_for,
    entry_ids,
    json_identical,
    json_objects,
    raw_json_objects,
    session_deltas,
    session_snapshots,
)

SID = "séssion-😀"
POOL = st.sampled_from(ID_POOL)

quick = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def memory_store() -> Store:
    return eventlog.connect("memory://")


def decoded(payload: dict[str, Any] | RawJSON) -> dict[str, Any]:
    """What `load` (not raw) returns for a stored payload: the stored bytes decoded."""
    result: dict[str, Any] = msgspec.json.decode(compact_bytes(payload))
    return result


def as_loaded(data: SessionData) -> SessionData:
    """`data` as `load` returns it: every payload and the metadata decoded to dicts."""
    return SessionData(
        entries=[
            msgspec.structs.replace(entry, payload=decoded(entry.payload)) for entry in data.entries
        ],
        leaf_id=data.leaf_id,
        metadata=decoded(data.metadata),
    )


def unique_entries(entries: list[Entry]) -> list[Entry]:
    """Entries with later identical copies dropped (what a store keeps)."""
    seen: dict[str, Entry] = {}
    for entry in entries:
        seen.setdefault(entry.id, entry)
    return list(seen.values())


def stored_bytes(store: Store, session_id: str) -> tuple[Any, ...]:
    """Everything `load(raw=True)` shows, as comparable bytes and strings."""
    loaded = store.load(session_id, raw=True)
    assert loaded is not None
    return (
        [
            (e.id, e.parent_id, e.kind, e.timestamp, bytes(e.payload))  # type: ignore[arg-type]
            for e in loaded.entries
        ],
        loaded.leaf_id,
        bytes(loaded.metadata),  # type: ignore[arg-type]
    )


def check_exact(store: Store, session_id: str, data: SessionData) -> None:
    """`load` equals `data` (payloads decoded) and `load(raw=True)` has its exact bytes."""
    loaded = store.load(session_id)
    assert loaded is not None
    assert loaded == as_loaded(data)
    for got, want in zip(loaded.entries, data.entries, strict=True):
        assert json_identical(got.payload, decoded(want.payload)), want.id
    assert json_identical(loaded.metadata, decoded(data.metadata))
    raw = store.load(session_id, raw=True)
    assert raw is not None
    assert [type(entry.payload) for entry in raw.entries] == [RawJSON] * len(raw.entries)
    assert [bytes(entry.payload) for entry in raw.entries] == [  # type: ignore[arg-type]
        compact_bytes(entry.payload) for entry in data.entries
    ]
    assert bytes(raw.metadata) == compact_bytes(data.metadata)  # type: ignore[arg-type]


# -- load(save(s)) == s ------------------------------------------------------


@quick
@given(session_snapshots())
def test_load_of_save_is_the_snapshot(data: SessionData) -> None:
    with memory_store() as store:
        result = store.save(SID, data)
        assert result.version == 1
        assert result.appended == tuple(entry.id for entry in data.entries)
        check_exact(store, SID, data)
        loaded = store.load(SID)
        assert loaded is not None and loaded.version == 1


@quick
@given(session_snapshots(max_entries=4).filter(lambda data: not _has_raw(data)))
def test_dict_snapshot_loads_back_equal_to_itself(data: SessionData) -> None:
    with memory_store() as store:
        store.save(SID, data)
        assert store.load(SID) == data


def _has_raw(data: SessionData) -> bool:
    return isinstance(data.metadata, RawJSON) or any(
        isinstance(entry.payload, RawJSON) for entry in data.entries
    )


@quick
@given(session_snapshots(max_entries=5), st.data())
def test_identical_copies_in_a_snapshot_collapse(data: SessionData, draw: st.DataObject) -> None:
    copies = list(data.entries)
    if data.entries:
        copies += draw.draw(st.lists(st.sampled_from(data.entries), max_size=3))
    with memory_store() as store:
        store.save(SID, msgspec.structs.replace(data, entries=copies))
        check_exact(store, SID, data)


# -- save is idempotent ----------------------------------------------------


@quick
@given(st.lists(session_snapshots(ids=POOL), min_size=1, max_size=3))
def test_saving_the_same_snapshot_again_changes_nothing(snapshots: list[SessionData]) -> None:
    with memory_store() as store:
        for data in snapshots:
            first = store.save(SID, data)
            before = stored_bytes(store, SID)
            second = store.save(SID, data)
            assert second.version == first.version
            assert not second.changed
            assert second.appended == second.tombstoned == second.superseded == ()
            assert second.moved == ()
            assert stored_bytes(store, SID) == before
            loaded = store.load(SID)
            assert loaded is not None and loaded.version == first.version


# -- reconcile reaches any snapshot from any stored state --------------------------


@quick
@given(
    session_deltas(ids=POOL, max_deltas=3),
    st.booleans(),
    st.lists(session_snapshots(ids=POOL), min_size=1, max_size=3),
)
def test_reconcile_from_any_state_reaches_the_snapshot(
    deltas: list[SessionDelta], purge: bool, snapshots: list[SessionData]
) -> None:
    with memory_store() as store:
        for delta in deltas:
            with contextlib.suppress(IdConflictError, InvalidLeafError):
                store.save_delta(SID, delta)
        if purge and store.load(SID) is not None:
            store.purge(SID)
        for data in snapshots:
            before = store.load(SID, raw=True)
            version = 0 if before is None else before.version
            result = store.save(SID, data)
            check_exact(store, SID, data)
            same = before is not None and stored_bytes(store, SID) == _bytes_of(before)
            assert result.changed == (not same)
            assert result.version == version + (0 if same else 1)
            if before is not None:
                # History is kept: the previous version still loads as it was.
                old = store.load(SID, at_version=version, raw=True)
                assert old is not None and _bytes_of(old) == _bytes_of(before)


def _bytes_of(data: SessionData) -> tuple[Any, ...]:
    return (
        [(e.id, e.parent_id, e.kind, e.timestamp, bytes(e.payload)) for e in data.entries],  # type: ignore[arg-type]
        data.leaf_id,
        bytes(data.metadata),  # type: ignore[arg-type]
    )


# -- a retried delta changes nothing after the first time ---------------------


@quick
@given(session_deltas(ids=POOL), st.integers(1, 3))
def test_retried_delta_changes_nothing(deltas: list[SessionDelta], retries: int) -> None:
    live: list[str] = []
    tombstoned: set[str] = set()
    applied: list[SessionDelta] = []
    with memory_store() as store:
        for delta in deltas:
            before = store.load(SID, raw=True)
            try:
                first = store.save_delta(SID, delta)
            except (IdConflictError, InvalidLeafError):
                after = store.load(SID, raw=True)
                assert (after is None) == (before is None)
                if before is not None and after is not None:
                    assert _bytes_of(after) == _bytes_of(before)
                    assert after.version == before.version
                continue
            applied.append(delta)
            new_ids = [entry.id for entry in unique_entries(delta.new_entries)]
            appended = [i for i in new_ids if i not in live and i not in tombstoned]
            removed = [i for i in dict.fromkeys(delta.removed_entry_ids) if i in live]
            assert first.appended == tuple(appended)
            assert first.skipped == tuple(i for i in new_ids if i not in appended)
            assert first.tombstoned == tuple(removed)
            live = [i for i in live if i not in removed] + appended
            tombstoned |= set(removed)
            state = stored_bytes(store, SID)
            assert [row[0] for row in state[0]] == live
            for _ in range(retries):
                again = store.save_delta(SID, delta)
                assert again.version == first.version
                assert not again.changed
                assert again.appended == again.tombstoned == ()
                assert set(again.skipped) == set(new_ids)
                assert stored_bytes(store, SID) == state
        # Replaying an older delta never resurrects, reorders or rewrites an entry;
        # it only re-applies its removals (and its leaf and metadata, last writer wins).
        for delta in applied:
            before = store.load(SID, raw=True)
            assert before is not None
            dropped = set(delta.removed_entry_ids)
            try:
                store.save_delta(SID, delta)
            except InvalidLeafError:
                dropped = set()  # nothing was written
            after = store.load(SID, raw=True)
            assert after is not None
            kept = [row for row in _bytes_of(before)[0] if row[0] not in dropped]
            assert _bytes_of(after)[0] == kept


# -- save writes only the difference ----------------------------------------


DIFFERENCES = ["added", "dropped", "changed", "moved_to_end"]


@st.composite
def snapshot_and_one_change(draw: st.DrawFn, how: str) -> tuple[SessionData, SessionData, str]:
    """A snapshot, the same snapshot with one entry different (`how`), and that entry's id."""
    data = draw(session_snapshots(max_entries=6).filter(lambda d: len(d.entries) >= 1))
    entries = list(data.entries)
    ids = [entry.id for entry in entries]
    index = draw(st.integers(0, len(entries) - 1))
    target = entries[index]
    if how == "added":
        new_id = draw(entry_ids().filter(lambda candidate: candidate not in ids))
        target = draw(entries_for(new_id, [None, *ids]))
        entries.append(target)
    elif how == "dropped":
        del entries[index]
    elif how == "changed":
        # An extra first key always gives other bytes.
        payload = {"edited": True, **decoded(target.payload)}
        entries[index] = msgspec.structs.replace(target, payload=payload)
    else:
        entries.append(entries.pop(index))
    leaf = data.leaf_id if data.leaf_id in [entry.id for entry in entries] else None
    note(f"before: {ids}; after: {[entry.id for entry in entries]}; {how} {target.id!r}")
    return data, SessionData(entries, leaf_id=leaf, metadata=data.metadata), target.id


@pytest.mark.parametrize("how", DIFFERENCES)
@quick
@given(data=st.data())
def test_save_of_a_one_entry_difference_writes_only_that_entry(
    how: str, data: st.DataObject
) -> None:
    before, after, entry_id = data.draw(snapshot_and_one_change(how))
    with memory_store() as store:
        store.save(SID, before)
        result = store.save(SID, after)
        check_exact(store, SID, after)
        info = store.list_sessions(prefix=SID).items[0]
    if how == "moved_to_end" and before.entries[-1].id == entry_id:
        # Moving the last entry to the end is no change at all.
        assert (result.appended, result.tombstoned, result.changed) == ((), (), False)
        return
    expected: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
        "added": ((entry_id,), ()),
        "dropped": ((), (entry_id,)),
        "changed": ((entry_id,), ()),
        "moved_to_end": ((entry_id,), ()),
    }
    assert (result.appended, result.tombstoned) == expected[how]
    assert result.superseded == ((entry_id,) if how == "changed" else ())
    assert result.moved == ((entry_id,) if how == "moved_to_end" else ())
    assert result.version == 2
    # Only the difference was stored: one new record, or one record stopped being live.
    assert info.entry_count == len(after.entries)
    assert info.removed_count == (0 if how == "added" else 1)


@quick
@given(session_snapshots(), st.data())
def test_leaf_or_metadata_change_alone_appends_nothing(
    data: SessionData, draw: st.DataObject
) -> None:
    leaf = draw.draw(st.sampled_from([None, *(entry.id for entry in data.entries)]))
    metadata = draw.draw(json_objects(max_leaves=3))
    other = SessionData(data.entries, leaf_id=leaf, metadata=metadata)
    with memory_store() as store:
        store.save(SID, data)
        result = store.save(SID, other)
        check_exact(store, SID, other)
    same = leaf == data.leaf_id and compact_bytes(metadata) == compact_bytes(data.metadata)
    assert result.appended == result.tombstoned == ()
    assert result.changed == (not same)
    assert result.version == (1 if same else 2)


# -- content is the encoded bytes -------------------------------------------


@quick
@given(entry_ids(), json_objects(), st.booleans())
def test_dict_and_its_compact_raw_encoding_are_the_same_content(
    entry_id: str, payload: dict[str, Any], raw_first: bool
) -> None:
    as_dict = Entry(entry_id, payload=payload)
    as_raw = Entry(entry_id, payload=RawJSON(msgspec.json.encode(payload)))
    first, second = (as_raw, as_dict) if raw_first else (as_dict, as_raw)
    with memory_store() as store:
        store.save_delta(SID, SessionDelta([first], leaf_id=entry_id))
        result = store.save_delta(SID, SessionDelta([second], leaf_id=entry_id))
        assert result.skipped == (entry_id,)
        assert (result.appended, result.changed, result.version) == ((), False, 1)
        snapshot = store.save(SID, SessionData([second], leaf_id=entry_id))
        assert (snapshot.appended, snapshot.changed, snapshot.version) == ((), False, 1)
        loaded = store.load(SID)
        assert loaded is not None and json_identical(loaded.entries[0].payload, payload)


@quick
@given(entry_ids(), raw_json_objects())
def test_raw_json_with_other_bytes_is_other_content(entry_id: str, raw: RawJSON) -> None:
    spaced = RawJSON(b" " + bytes(raw))
    with memory_store() as store:
        store.save_delta(SID, SessionDelta([Entry(entry_id, payload=raw)]))
        with pytest.raises(IdConflictError):
            store.save_delta(SID, SessionDelta([Entry(entry_id, payload=spaced)]))
        loaded = store.load(SID, raw=True)
        assert loaded is not None and bytes(loaded.entries[0].payload) == bytes(raw)  # type: ignore[arg-type]
        assert loaded.version == 1


@quick
@given(entry_ids(), json_objects().filter(lambda p: len(p) >= 2))
def test_key_order_is_part_of_the_content(entry_id: str, payload: dict[str, Any]) -> None:
    reordered = dict(reversed(payload.items()))
    with memory_store() as store:
        store.save_delta(SID, SessionDelta([Entry(entry_id, payload=payload)]))
        with pytest.raises(IdConflictError):
            store.save_delta(SID, SessionDelta([Entry(entry_id, payload=reordered)]))
        result = store.save(SID, SessionData([Entry(entry_id, payload=reordered)]))
        assert result.superseded == (entry_id,)
        loaded = store.load(SID)
        assert loaded is not None and list(loaded.entries[0].payload) == list(reordered)


# -- the core directly: plan, fold, walk without a store -------------------------------


NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _apply(
    records: list[Record], removals: list[int], appends: list[Record], version: int
) -> list[Record]:
    stamped = [
        msgspec.structs.replace(r, removed_in_version=version) if r.seq in removals else r
        for r in records
    ]
    return stamped + appends


def _live_in_order(records: list[Record]) -> list[Record]:
    """Live records in session order (`pos`), as every backend reads them."""
    return sorted((r for r in records if r.live), key=lambda r: r.pos)


@quick
@given(st.lists(session_snapshots(ids=POOL), min_size=1, max_size=4))
def test_plan_reconcile_then_fold_gives_each_snapshot(snapshots: list[SessionData]) -> None:
    state: SessionState | None = None
    records: list[Record] = []
    for data in snapshots:
        prepared = prepare_snapshot(SID, data, max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES)
        live = _live_in_order(records)
        plan = plan_reconcile(SID, prepared, state, live, expected_version=None, now=NOW)
        if plan.changed:
            records = _apply(records, plan.removals, plan.appends, plan.state.version)
        state = plan.state
        live = _live_in_order(records)
        # A superseding record keeps its entry's place; live places stay unique.
        assert len({r.pos for r in live}) == len(live)
        folded = fold_session(
            state,
            entries_from_records(live, raw=False),
            leaf_id=state.leaf_id,
            metadata=state.metadata,
            version=state.version,
            updated_at=NOW,
            raw=False,
        )
        assert folded == as_loaded(data)
        assert state.entry_count == len(live)
        assert state.removed_count == len(records) - len(live)
        assert state.bytes == sum(len(r.payload) for r in records)
        # Rows are only inserted or stamped once: seqs stay unique.
        assert len({r.seq for r in records}) == len(records)


def _reference_path(live: dict[str, str | None], leaf: str | None) -> list[str] | None:
    """Root-to-leaf ids, or None on a cycle."""
    branch: list[str] = []
    current = leaf
    while current is not None and current in live:
        if current in branch:
            return None
        branch.append(current)
        current = live[current]
    return branch[::-1]


@quick
@given(st.lists(POOL, unique=True, min_size=1, max_size=8), st.data())
def test_walk_path_follows_live_parents_and_stops_on_cycles(
    ids: list[str], draw: st.DataObject
) -> None:
    parents = {i: draw.draw(st.sampled_from([None, *(p for p in ID_POOL if p != i)])) for i in ids}
    records = [
        Record(seq, seq, i, parents[i], "message", None, b"{}", b"", 1) for seq, i in enumerate(ids)
    ]
    leaf = draw.draw(st.sampled_from(ids))
    expected = _reference_path(parents, leaf)
    if expected is None:
        with pytest.raises(CorruptionError):
            walk_path(SID, records, leaf)
    else:
        assert [entry.id for entry in walk_path(SID, records, leaf)] == expected
    assert walk_path(SID, records, None) == []
