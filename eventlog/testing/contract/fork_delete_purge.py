"""fork, delete and purge (DESIGN.md 2, Precise rules)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from eventlog import (
    ConcurrencyError,
    Entry,
    HistoryPurgedError,
    InvalidIdError,
    InvalidInputError,
    InvalidLeafError,
    RawJSON,
    SessionData,
    SessionExistsError,
    SessionNotFoundError,
    Store,
)

from .._backend import BackendLike
from ._helpers import (
    SID,
    chain,
    delta,
    ids,
    info,
    loaded,
    msg,
    raw_bytes,
    unchanged,
)

FORK = "fork-1"


def _source(store: Store) -> None:
    """a - b - c (leaf) and b - d, with b2 removed; metadata set; version 2."""
    store.save_delta(
        SID,
        delta(*chain(["a", "b", "c"]), msg("d", "b"), msg("b2", "a"), leaf="c", metadata={"m": 1}),
    )
    store.save_delta(SID, delta(removed=["b2"]))


def _purgeable(store: Store) -> None:
    """v1: a, b, c; v2: b removed; v3: c superseded. Two records are no longer live."""
    store.save_delta(
        SID,
        delta(
            Entry(id="a", payload=RawJSON(b'{"n":"a"}')),
            Entry(id="b", parent_id="a", payload=RawJSON(b'{"n":"bb"}')),
            Entry(id="c", parent_id="b", payload=RawJSON(b'{"n":"ccc"}')),
            leaf="c",
        ),
    )
    store.save_delta(SID, delta(removed=["b"]))
    store.save(
        SID,
        SessionData(
            entries=[
                Entry(id="a", payload=RawJSON(b'{"n":"a"}')),
                Entry(id="c", parent_id="b", payload=RawJSON(b'{"n":"cccc"}')),
            ],
            leaf_id="c",
        ),
    )


class ForkDeletePurgeContract:
    """fork, delete and purge."""

    def test_fork_copies_live_entries_leaf_and_metadata(self, store: Store) -> None:
        _source(store)
        result = store.fork(SID, FORK)
        assert result.session_id == FORK
        assert result.version == 1
        assert result.parent_session_id == SID
        assert result.forked_from_entry_id == "c"
        assert result.entry_count == 4
        assert result.removed_count == 0
        assert result.created_at.utcoffset() == timedelta(0)
        forked = loaded(store, FORK)
        assert forked == loaded(store, SID)
        assert forked.version == 1
        assert forked.parent_session_id == SID
        assert forked.forked_from_entry_id == "c"

    def test_fork_keeps_exact_payload_bytes(self, store: Store) -> None:
        raw = RawJSON(b'{ "x" : 1 ,"x":2}')
        store.save_delta(SID, delta(Entry(id="a", payload=raw), leaf="a", metadata=RawJSON(b"{ }")))
        store.fork(SID, FORK)
        forked = loaded(store, FORK, raw=True)
        assert raw_bytes(forked.entries[0].payload) == bytes(raw)
        assert raw_bytes(forked.metadata) == b"{ }"

    def test_fork_at_entry_copies_only_its_path(self, store: Store) -> None:
        _source(store)
        result = store.fork(SID, FORK, at_entry_id="d")
        assert result.forked_from_entry_id == "d"
        assert result.entry_count == 3
        forked = loaded(store, FORK)
        assert ids(forked) == ["a", "b", "d"]
        assert forked.leaf_id == "d"
        assert forked.metadata == {"m": 1}
        assert forked.forked_from_entry_id == "d"
        assert forked.entries == [e for e in loaded(store, SID).entries if e.id in {"a", "b", "d"}]

    def test_fork_is_independent_of_its_source(self, store: Store) -> None:
        _source(store)
        store.fork(SID, FORK)
        before = loaded(store, SID, raw=True)
        store.save_delta(FORK, delta(msg("f", "c"), removed=["a"], leaf="f", metadata={"m": 2}))
        assert loaded(store, SID, raw=True) == before
        store.save_delta(SID, delta(msg("s", "c"), leaf="s"))
        assert "s" not in ids(store.load(FORK))
        assert loaded(store, FORK).version == 2

    def test_fork_history_starts_at_version_1(self, store: Store) -> None:
        _source(store)
        store.fork(SID, FORK)
        assert loaded(store, FORK, at_version=1) == loaded(store, FORK)

    def test_fork_is_listed_with_its_parent(self, store: Store) -> None:
        _source(store)
        store.fork(SID, FORK)
        assert info(store, FORK).parent_session_id == SID
        assert info(store, SID).parent_session_id is None

    def test_fork_onto_an_existing_session_raises(self, backend: BackendLike, store: Store) -> None:
        _source(store)
        store.save_delta(FORK, delta(msg("other")))
        with unchanged(backend, SID, FORK), pytest.raises(SessionExistsError) as caught:
            store.fork(SID, FORK)
        assert caught.value.session_id == FORK

    def test_fork_onto_itself_raises(self, backend: BackendLike, store: Store) -> None:
        _source(store)
        with unchanged(backend, SID), pytest.raises(SessionExistsError):
            store.fork(SID, SID)

    def test_fork_of_a_missing_session_raises(self, backend: BackendLike, store: Store) -> None:
        with unchanged(backend, "missing", FORK), pytest.raises(SessionNotFoundError) as caught:
            store.fork("missing", FORK)
        assert caught.value.session_id == "missing"

    @pytest.mark.parametrize("at", ["unknown", "b2"])
    def test_fork_at_an_entry_that_is_not_live_raises(
        self, backend: BackendLike, store: Store, at: str
    ) -> None:
        _source(store)
        with unchanged(backend, SID, FORK), pytest.raises(InvalidLeafError):
            store.fork(SID, FORK, at_entry_id=at)

    @pytest.mark.parametrize("new_id", ["", "x" * 256, "a\x00b"])
    def test_fork_to_an_invalid_id_raises(
        self, backend: BackendLike, store: Store, new_id: str
    ) -> None:
        _source(store)
        with unchanged(backend, SID), pytest.raises(InvalidIdError):
            store.fork(SID, new_id)

    def test_delete_removes_the_session_and_its_records(
        self, backend: BackendLike, store: Store
    ) -> None:
        empty = backend.count_rows()
        _source(store)
        store.save(SID, SessionData(entries=[msg("a", None, "edited")], leaf_id="a"))
        assert store.delete(SID) is True
        assert store.load(SID) is None
        assert backend.count_rows() == empty
        assert [item.session_id for item in store.list_sessions().items] == []
        with pytest.raises(SessionNotFoundError):
            store.path(SID)

    def test_delete_of_a_missing_session_returns_false(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta("other", delta(msg("a")))
        with unchanged(backend, "other"):
            assert store.delete(SID) is False
        assert store.delete(SID) is False

    def test_delete_twice(self, store: Store) -> None:
        _source(store)
        assert store.delete(SID) is True
        assert store.delete(SID) is False

    def test_deleted_session_can_be_created_afresh(self, store: Store) -> None:
        _source(store)
        store.delete(SID)
        result = store.save_delta(SID, delta(msg("a", None, "different"), leaf="a"))
        assert result.version == 1
        assert result.appended == ("a",)
        data = loaded(store, SID)
        assert ids(data) == ["a"]
        assert data.metadata == {}
        with pytest.raises(InvalidInputError):
            store.load(SID, at_version=2)

    def test_delete_at_the_expected_version_deletes(self, store: Store) -> None:
        _source(store)
        version = info(store, SID).version
        assert store.delete(SID, expected_version=version) is True
        assert store.load(SID) is None
        # 0: the session must not exist, which is now so; nothing to delete.
        assert store.delete(SID, expected_version=0) is False

    @pytest.mark.parametrize("offset", [-1, 1])
    def test_delete_at_another_version_raises_and_deletes_nothing(
        self, backend: BackendLike, store: Store, offset: int
    ) -> None:
        _source(store)
        version = info(store, SID).version
        with unchanged(backend, SID), pytest.raises(ConcurrencyError) as raised:
            store.delete(SID, expected_version=version + offset)
        assert raised.value.expected_version == version + offset
        assert raised.value.actual_version == version

    def test_delete_of_a_missing_session_at_a_version_raises(self, store: Store) -> None:
        with pytest.raises(ConcurrencyError):
            store.delete(SID, expected_version=1)

    @pytest.mark.parametrize("bad", [-1, True, 1.0, "1"])
    def test_delete_with_a_bad_expected_version_raises(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        _source(store)
        with unchanged(backend, SID), pytest.raises(InvalidInputError):
            store.delete(SID, expected_version=bad)  # type: ignore[arg-type]

    def test_delete_leaves_other_sessions_and_forks_alone(self, store: Store) -> None:
        _source(store)
        store.fork(SID, FORK)
        store.save_delta("z", delta(msg("a")))
        kept = {sid: loaded(store, sid, raw=True) for sid in (FORK, "z")}
        store.delete(SID)
        assert {sid: loaded(store, sid, raw=True) for sid in (FORK, "z")} == kept
        assert loaded(store, FORK).parent_session_id == SID

    def test_purge_returns_the_number_of_dropped_records(self, store: Store) -> None:
        _purgeable(store)
        assert store.purge(SID) == 2
        assert store.purge(SID) == 0

    def test_purge_leaves_load_unchanged_and_keeps_the_version(self, store: Store) -> None:
        _purgeable(store)
        before = loaded(store, SID, raw=True)
        store.purge(SID)
        after = loaded(store, SID, raw=True)
        assert after == before
        assert after.version == before.version == 3

    def test_purge_drops_rows(self, backend: BackendLike, store: Store) -> None:
        _purgeable(store)
        rows = backend.count_rows()
        store.purge(SID)
        assert backend.count_rows() < rows

    def test_purge_updates_counts_and_bytes(self, store: Store) -> None:
        _purgeable(store)
        listed = info(store, SID)
        assert listed.entry_count == 2
        assert listed.removed_count == 2
        assert listed.bytes == len(b'{"n":"a"}{"n":"bb"}{"n":"ccc"}{"n":"cccc"}')
        store.purge(SID)
        listed = info(store, SID)
        assert listed.entry_count == 2
        assert listed.removed_count == 0
        assert listed.bytes == len(b'{"n":"a"}{"n":"cccc"}')
        assert listed.version == 3

    def test_history_before_the_purge_is_gone(self, store: Store) -> None:
        _purgeable(store)
        store.purge(SID)
        for version in (1, 2):
            with pytest.raises(HistoryPurgedError) as caught:
                store.load(SID, at_version=version)
            assert caught.value.session_id == SID
        assert loaded(store, SID, at_version=3) == loaded(store, SID)

    def test_history_after_the_purge_is_kept(self, store: Store) -> None:
        _purgeable(store)
        store.purge(SID)
        store.save_delta(SID, delta(msg("d", "c"), leaf="d"))
        store.save_delta(SID, delta(removed=["d"], leaf="c"))
        assert ids(loaded(store, SID, at_version=4)) == ["a", "c", "d"]
        assert ids(loaded(store, SID, at_version=3)) == ["a", "c"]
        with pytest.raises(HistoryPurgedError):
            store.load(SID, at_version=2)

    def test_purged_ids_can_be_appended_again(self, store: Store) -> None:
        _purgeable(store)
        store.purge(SID)
        result = store.save_delta(SID, delta(msg("b", "a", "brand new"), leaf="b"))
        assert result.appended == ("b",)
        assert result.version == 4
        data = loaded(store, SID)
        assert ids(data) == ["a", "c", "b"]
        assert data.entries[2] == msg("b", "a", "brand new")

    def test_purge_of_a_missing_session_raises(self, backend: BackendLike, store: Store) -> None:
        with unchanged(backend, "missing"), pytest.raises(SessionNotFoundError) as caught:
            store.purge("missing")
        assert caught.value.session_id == "missing"

    def test_purge_keeps_reordered_sessions_intact(self, store: Store) -> None:
        entries = chain(["a", "b", "c"])
        store.save(SID, SessionData(entries=entries, leaf_id="c"))
        data = SessionData(entries=[entries[1], entries[2], entries[0]], leaf_id="c")
        store.save(SID, data)
        store.purge(SID)
        assert store.load(SID) == data

    def test_fork_of_a_session_without_leaf(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf=None, metadata={"m": 1}))
        result = store.fork(SID, FORK)
        assert result.forked_from_entry_id is None
        forked = loaded(store, FORK)
        assert forked.leaf_id is None
        assert ids(forked) == ["a"]
