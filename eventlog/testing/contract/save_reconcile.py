"""save: the snapshot is authoritative, only the difference is written (DESIGN.md 2)."""

from __future__ import annotations

import pytest

from eventlog import IdConflictError, InvalidLeafError, SessionData, Store

from .._backend import BackendLike
from ._helpers import SID, chain, delta, ids, loaded, msg, unchanged


class SaveReconcileContract:
    """save: the snapshot is authoritative, only the difference is written."""

    def test_save_creates_the_session(self, store: Store) -> None:
        data = SessionData(entries=chain(["a", "b"]), leaf_id="b", metadata={"t": 1})
        result = store.save(SID, data)
        assert result.version == 1
        assert result.changed
        assert result.appended == ("a", "b")
        assert store.load(SID) == data

    def test_empty_snapshot_creates_version_1(self, store: Store) -> None:
        result = store.save(SID, SessionData())
        assert result.version == 1
        assert store.load(SID) == SessionData()

    def test_identical_snapshot_keeps_version(self, backend: BackendLike, store: Store) -> None:
        data = SessionData(entries=chain(["a", "b"]), leaf_id="b", metadata={"t": 1})
        store.save(SID, data)
        with unchanged(backend, SID):
            result = store.save(SID, data)
        assert result.version == 1
        assert not result.changed
        assert result.appended == ()
        assert result.tombstoned == ()
        assert result.superseded == ()
        assert result.moved == ()

    @pytest.mark.parametrize("raw", [False, True])
    def test_saving_what_load_returned_is_a_noop(
        self, backend: BackendLike, store: Store, raw: bool
    ) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="c", metadata={"k": [1, 2]}))
        store.save_delta(SID, delta(removed=["b"]))
        with unchanged(backend, SID):
            result = store.save(SID, loaded(store, SID, raw=raw))
        assert result.version == 2
        assert not result.changed

    def test_new_ids_are_appended(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b"]), leaf_id="b"))
        data = SessionData(entries=chain(["a", "b", "c"]), leaf_id="c")
        result = store.save(SID, data)
        assert result.appended == ("c",)
        assert result.tombstoned == ()
        assert result.version == 2
        assert store.load(SID) == data

    def test_missing_ids_are_tombstoned(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b", "c"]), leaf_id="a"))
        data = SessionData(entries=[msg("a", None, "t-a"), msg("c", "b", "t-c")], leaf_id="a")
        result = store.save(SID, data)
        assert result.tombstoned == ("b",)
        assert result.appended == ()
        assert store.load(SID) == data

    def test_changed_entry_supersedes(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b"]), leaf_id="b"))
        data = SessionData(entries=[msg("a", None, "t-a"), msg("b", "a", "edited")], leaf_id="b")
        result = store.save(SID, data)
        assert result.superseded == ("b",)
        assert "b" in result.appended
        assert result.version == 2
        assert store.load(SID) == data

    def test_changed_entry_in_the_middle_keeps_snapshot_order(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b", "c"]), leaf_id="c"))
        entries = chain(["a", "b", "c"])
        entries[1] = msg("b", "a", "edited")
        data = SessionData(entries=entries, leaf_id="c")
        result = store.save(SID, data)
        assert "b" in result.superseded
        assert store.load(SID) == data
        assert ids(store.load(SID)) == ["a", "b", "c"]

    def test_reorder_restores_snapshot_order_and_moves_only_what_moved(self, store: Store) -> None:
        entries = chain(["a", "b", "c", "d"])
        store.save(SID, SessionData(entries=entries, leaf_id="d"))
        reordered = [entries[0], entries[2], entries[3], entries[1]]
        data = SessionData(entries=reordered, leaf_id="d")
        result = store.save(SID, data)
        assert result.moved == ("b",)
        assert "b" in result.appended
        assert result.superseded == ()
        assert result.tombstoned == ()
        assert result.version == 2
        assert ids(store.load(SID)) == ["a", "c", "d", "b"]

    def test_full_reversal_is_restored(self, store: Store) -> None:
        entries = [msg(f"e{n}") for n in range(6)]
        store.save(SID, SessionData(entries=entries, leaf_id="e0"))
        data = SessionData(entries=entries[::-1], leaf_id="e0")
        result = store.save(SID, data)
        assert result.moved
        assert set(result.moved) <= set(result.appended)
        assert store.load(SID) == data

    def test_tombstoned_id_in_snapshot_comes_back(self, store: Store) -> None:
        data = SessionData(entries=chain(["a", "b", "c"]), leaf_id="c")
        store.save(SID, data)
        store.save_delta(SID, delta(removed=["b"]))
        result = store.save(SID, data)
        assert "b" in result.appended
        assert result.version == 3
        assert store.load(SID) == data

    def test_tombstoned_id_comes_back_with_new_content(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b"]), leaf_id="a"))
        store.save_delta(SID, delta(removed=["b"]))
        data = SessionData(entries=[msg("a", None, "t-a"), msg("b", "a", "new")], leaf_id="b")
        store.save(SID, data)
        assert store.load(SID) == data

    def test_only_leaf_change_bumps_version_without_records(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b"]), leaf_id="b"))
        data = SessionData(entries=chain(["a", "b"]), leaf_id="a")
        result = store.save(SID, data)
        assert result.version == 2
        assert result.changed
        assert result.appended == ()
        assert store.load(SID) == data

    def test_only_metadata_change_bumps_version(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a"]), leaf_id="a", metadata={"v": 1}))
        data = SessionData(entries=chain(["a"]), leaf_id="a", metadata={"v": 2})
        result = store.save(SID, data)
        assert result.version == 2
        assert result.appended == ()
        assert loaded(store, SID).metadata == {"v": 2}

    def test_empty_snapshot_tombstones_everything(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b"]), leaf_id="b"))
        result = store.save(SID, SessionData())
        assert set(result.tombstoned) == {"a", "b"}
        assert store.load(SID) == SessionData()

    def test_save_ignores_read_only_fields(self, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a"]), leaf_id="a"))
        data = SessionData(
            entries=chain(["a"]),
            leaf_id="a",
            version=99,
            parent_session_id="elsewhere",
            forked_from_entry_id="a",
        )
        result = store.save(SID, data)
        assert not result.changed
        stored = loaded(store, SID)
        assert stored.version == 1
        assert stored.parent_session_id is None

    def test_same_id_twice_identical_collapses(self, store: Store) -> None:
        entries = chain(["a", "b"])
        store.save(SID, SessionData(entries=[*entries, entries[0]], leaf_id="b"))
        assert ids(store.load(SID)) == ["a", "b"]

    def test_same_id_twice_different_conflicts(self, backend: BackendLike, store: Store) -> None:
        store.save(SID, SessionData(entries=chain(["a"]), leaf_id="a"))
        entries = [msg("a", None, "t-a"), msg("b", "a"), msg("b", "a", "other")]
        with unchanged(backend, SID), pytest.raises(IdConflictError) as caught:
            store.save(SID, SessionData(entries=entries, leaf_id="a"))
        assert caught.value.entry_id == "b"

    @pytest.mark.parametrize("leaf", ["zzz", "b"])
    def test_leaf_not_in_snapshot_is_rejected(
        self, backend: BackendLike, store: Store, leaf: str
    ) -> None:
        store.save(SID, SessionData(entries=chain(["a", "b"]), leaf_id="a"))
        with unchanged(backend, SID), pytest.raises(InvalidLeafError):
            store.save(SID, SessionData(entries=chain(["a"]), leaf_id=leaf))

    def test_save_writes_only_the_difference(self, backend: BackendLike, store: Store) -> None:
        entries = chain([f"e{n}" for n in range(50)])
        store.save(SID, SessionData(entries=entries, leaf_id="e49"))
        rows = backend.count_rows()
        edited = list(entries)
        edited[49] = msg("e49", "e48", "edited")
        result = store.save(SID, SessionData(entries=edited, leaf_id="e49"))
        assert result.appended == ("e49",)
        assert result.superseded == ("e49",)
        assert result.moved == ()
        assert backend.count_rows() - rows <= 3

    def test_save_after_save_delta_history(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="c", metadata={"x": 1}))
        store.save_delta(SID, delta(msg("d", "c"), removed=["a"], leaf="d"))
        data = SessionData(
            entries=[msg("a", None, "back"), msg("d", "c"), msg("e", "d")],
            leaf_id="e",
            metadata={"y": 2},
        )
        store.save(SID, data)
        assert store.load(SID) == data
