"""save_delta: append, tombstone, idempotency by entry id (DESIGN.md 2, Precise rules)."""

from __future__ import annotations

import pytest

from eventlog import (
    Entry,
    IdConflictError,
    InvalidIdError,
    InvalidInputError,
    InvalidLeafError,
    RawJSON,
    SessionData,
    SessionDelta,
    Store,
)

from .._backend import BackendLike
from ._helpers import SID, chain, delta, ids, loaded, msg, unchanged


class SaveDeltaContract:
    """save_delta: append, tombstone, idempotency by entry id."""

    def test_creates_session_and_appends_in_order(self, store: Store) -> None:
        entries = chain(["a", "b", "c"])
        result = store.save_delta(SID, delta(*entries, leaf="c", metadata={"title": "x"}))
        assert result.version == 1
        assert result.changed
        assert result.appended == ("a", "b", "c")
        assert result.skipped == ()
        assert result.tombstoned == ()
        data = loaded(store, SID)
        assert data.entries == entries
        assert data.leaf_id == "c"
        assert data.metadata == {"title": "x"}
        assert data.version == 1

    def test_empty_delta_creates_session_at_version_1(self, store: Store) -> None:
        result = store.save_delta(SID, SessionDelta())
        assert result.version == 1
        assert result.changed
        data = loaded(store, SID)
        assert data.entries == []
        assert data.leaf_id is None
        assert data.metadata == {}
        assert data.version == 1

    def test_later_deltas_append_after_earlier_ones(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b"))
        result = store.save_delta(SID, delta(*chain(["c", "d"], parent_id="b"), leaf="d"))
        assert result.version == 2
        assert result.appended == ("c", "d")
        assert ids(store.load(SID)) == ["a", "b", "c", "d"]
        assert loaded(store, SID).leaf_id == "d"

    def test_unset_leaf_and_metadata_keep_stored_values(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a", metadata={"k": 1}))
        store.save_delta(SID, delta(msg("b", "a")))
        data = loaded(store, SID)
        assert data.leaf_id == "a"
        assert data.metadata == {"k": 1}

    def test_leaf_none_clears_the_leaf(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        result = store.save_delta(SID, delta(leaf=None))
        assert result.changed
        assert result.version == 2
        assert loaded(store, SID).leaf_id is None

    def test_metadata_replaces_whole_not_merged(self, store: Store) -> None:
        store.save_delta(SID, delta(metadata={"a": 1, "b": 2}))
        result = store.save_delta(SID, delta(metadata={"c": 3}))
        assert result.version == 2
        assert loaded(store, SID).metadata == {"c": 3}

    def test_leaf_may_be_an_entry_of_the_same_delta(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        store.save_delta(SID, delta(msg("b", "a"), leaf="b"))
        assert loaded(store, SID).leaf_id == "b"

    def test_leaf_may_move_to_an_older_live_entry(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b"))
        result = store.save_delta(SID, delta(leaf="a"))
        assert result.version == 2
        assert result.appended == ()
        assert loaded(store, SID).leaf_id == "a"

    def test_identical_entry_is_skipped(self, backend: BackendLike, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"])))
        with unchanged(backend, SID):
            result = store.save_delta(SID, delta(*chain(["a", "b"])))
        assert result.skipped == ("a", "b")
        assert result.appended == ()
        assert result.version == 1
        assert not result.changed

    def test_replayed_delta_changes_nothing_and_keeps_version(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta(SID, delta(msg("root")))
        once = delta(
            *chain(["a", "b"], parent_id="root"), removed=["root"], leaf="b", metadata={"m": 1}
        )
        first = store.save_delta(SID, once)
        assert first.version == 2
        with unchanged(backend, SID):
            again = store.save_delta(SID, once)
        assert again.version == 2
        assert not again.changed
        assert again.appended == ()
        assert again.tombstoned == ()
        assert set(again.skipped) == {"a", "b"}

    def test_partly_stored_delta_appends_only_the_new_ids(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        result = store.save_delta(SID, delta(msg("a"), msg("b", "a")))
        assert result.skipped == ("a",)
        assert result.appended == ("b",)
        assert result.version == 2
        assert ids(store.load(SID)) == ["a", "b"]

    @pytest.mark.parametrize(
        "changed",
        [
            msg("a", text="other text"),
            msg("a", parent_id="x"),
            msg("a", kind="custom"),
            msg("a", timestamp="2024-01-01T00:00:00Z"),
            Entry(id="a", payload={"text": "hello", "role": "user"}),
        ],
        ids=["payload", "parent_id", "kind", "timestamp", "key-order"],
    )
    def test_stored_id_with_other_content_conflicts_and_writes_nothing(
        self, backend: BackendLike, store: Store, changed: Entry
    ) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        with unchanged(backend, SID), pytest.raises(IdConflictError) as caught:
            store.save_delta(SID, delta(msg("new"), changed, leaf="new", metadata={"x": 1}))
        assert caught.value.entry_id == "a"
        assert caught.value.session_id == SID

    def test_raw_payload_with_other_whitespace_is_other_content(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta(SID, delta(Entry(id="a", payload=RawJSON(b'{"x":1}'))))
        with unchanged(backend, SID), pytest.raises(IdConflictError):
            store.save_delta(SID, delta(Entry(id="a", payload=RawJSON(b'{"x": 1}'))))

    def test_identical_raw_payload_is_skipped(self, store: Store) -> None:
        raw = RawJSON(b'{ "x" : 1 }')
        store.save_delta(SID, delta(Entry(id="a", payload=raw)))
        result = store.save_delta(SID, delta(Entry(id="a", payload=RawJSON(bytes(raw)))))
        assert result.skipped == ("a",)
        assert not result.changed

    def test_removed_entry_ids_tombstone(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="a"))
        result = store.save_delta(SID, delta(removed=["b"]))
        assert result.tombstoned == ("b",)
        assert result.version == 2
        assert result.changed
        assert ids(store.load(SID)) == ["a", "c"]

    def test_unknown_removed_ids_are_a_noop(self, backend: BackendLike, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        with unchanged(backend, SID):
            result = store.save_delta(SID, delta(removed=["nope", "other"]))
        assert result.version == 1
        assert result.tombstoned == ()
        assert not result.changed

    def test_already_removed_ids_are_a_noop(self, backend: BackendLike, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="a"))
        store.save_delta(SID, delta(removed=["b"]))
        with unchanged(backend, SID):
            result = store.save_delta(SID, delta(removed=["b"]))
        assert result.version == 2
        assert result.tombstoned == ()

    def test_append_and_remove_in_one_delta_is_one_version(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b"))
        result = store.save_delta(SID, delta(msg("c", "a"), removed=["b"], leaf="c"))
        assert result.version == 2
        assert result.appended == ("c",)
        assert result.tombstoned == ("b",)
        data = loaded(store, SID)
        assert ids(data) == ["a", "c"]
        assert data.leaf_id == "c"

    def test_tombstoned_id_is_never_resurrected_by_save_delta(self, store: Store) -> None:
        original = delta(*chain(["a", "b"]))
        store.save_delta(SID, original)
        store.save_delta(SID, delta(removed=["b"]))
        result = store.save_delta(SID, original)
        assert "b" not in result.appended
        assert result.version == 2
        assert not result.changed
        assert ids(store.load(SID)) == ["a"]

    def test_tombstoned_id_with_other_content_conflicts(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"])))
        store.save_delta(SID, delta(removed=["b"]))
        with unchanged(backend, SID), pytest.raises(IdConflictError) as caught:
            store.save_delta(SID, delta(msg("b", "a", text="changed")))
        assert caught.value.entry_id == "b"

    def test_removing_the_leaf_without_a_new_leaf_is_rejected(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b"))
        with unchanged(backend, SID), pytest.raises(InvalidLeafError) as caught:
            store.save_delta(SID, delta(removed=["b"]))
        assert caught.value.session_id == SID

    def test_removing_the_leaf_with_a_new_leaf_is_accepted(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b"))
        store.save_delta(SID, delta(removed=["b"], leaf="a"))
        assert loaded(store, SID).leaf_id == "a"
        store.save_delta(SID, delta(removed=["a"], leaf=None))
        assert loaded(store, SID).leaf_id is None

    @pytest.mark.parametrize("leaf", ["missing", "gone"])
    def test_leaf_that_is_not_live_after_the_write_is_rejected(
        self, backend: BackendLike, store: Store, leaf: str
    ) -> None:
        store.save_delta(SID, delta(*chain(["a", "gone"]), leaf="a"))
        store.save_delta(SID, delta(removed=["gone"]))
        with unchanged(backend, SID), pytest.raises(InvalidLeafError):
            store.save_delta(SID, delta(msg("c", "a"), leaf=leaf))

    def test_leaf_removed_in_the_same_delta_is_rejected(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="a"))
        with unchanged(backend, SID), pytest.raises(InvalidLeafError):
            store.save_delta(SID, delta(removed=["b"], leaf="b"))

    def test_new_session_with_unknown_leaf_is_not_created(
        self, backend: BackendLike, store: Store
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidLeafError):
            store.save_delta(SID, delta(msg("a"), leaf="b"))
        assert store.load(SID) is None

    def test_same_id_twice_identical_collapses(self, store: Store) -> None:
        result = store.save_delta(SID, delta(msg("a"), msg("b", "a"), msg("a")))
        assert result.appended.count("a") == 1
        assert ids(store.load(SID)) == ["a", "b"]

    def test_same_id_twice_with_other_content_conflicts(
        self, backend: BackendLike, store: Store
    ) -> None:
        with unchanged(backend, SID), pytest.raises(IdConflictError) as caught:
            store.save_delta(SID, delta(msg("a"), msg("a", text="other")))
        assert caught.value.entry_id == "a"
        assert store.load(SID) is None

    def test_same_id_new_and_removed_is_invalid(self, backend: BackendLike, store: Store) -> None:
        store.save_delta(SID, delta(msg("x")))
        with unchanged(backend, SID), pytest.raises(InvalidInputError) as caught:
            store.save_delta(SID, delta(msg("a"), removed=["a"]))
        assert caught.value.entry_id == "a"

    def test_same_stored_id_new_and_removed_is_invalid(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(InvalidInputError):
            store.save_delta(SID, delta(msg("a"), removed=["a"]))

    def test_parent_may_be_a_removed_entry(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="a"))
        store.save_delta(SID, delta(removed=["b"]))
        store.save_delta(SID, delta(msg("c", "b"), leaf="c"))
        data = loaded(store, SID)
        assert ids(data) == ["a", "c"]
        assert data.entries[1].parent_id == "b"

    def test_self_parent_is_rejected(self, backend: BackendLike, store: Store) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidIdError) as caught:
            store.save_delta(SID, delta(msg("a"), msg("b", "b")))
        assert caught.value.entry_id == "b"

    def test_replayed_delta_reapplies_leaf_and_metadata(self, store: Store) -> None:
        first = delta(msg("a"), leaf="a", metadata={"m": 1})
        store.save_delta(SID, first)
        store.save_delta(SID, delta(msg("b", "a"), leaf="b", metadata={"m": 2}))
        result = store.save_delta(SID, first)
        assert result.version == 3
        assert result.appended == ()
        data = loaded(store, SID)
        assert data.leaf_id == "a"
        assert data.metadata == {"m": 1}
        assert ids(data) == ["a", "b"]

    def test_replayed_delta_whose_leaf_is_gone_raises(
        self, backend: BackendLike, store: Store
    ) -> None:
        first = delta(*chain(["a", "b"]), leaf="b")
        store.save_delta(SID, first)
        store.save_delta(SID, delta(removed=["b"], leaf="a"))
        with unchanged(backend, SID), pytest.raises(InvalidLeafError):
            store.save_delta(SID, first)

    def test_only_live_entries_are_loaded_in_log_order(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("r"), leaf="r"))
        store.save_delta(SID, delta(msg("b1", "r"), msg("b2", "r")))
        store.save_delta(SID, delta(msg("c", "b1"), removed=["b2"], leaf="c"))
        store.save_delta(SID, delta(msg("b2x", "r")))
        assert ids(store.load(SID)) == ["r", "b1", "c", "b2x"]

    def test_many_small_deltas_keep_every_entry(self, store: Store) -> None:
        parent: str | None = None
        for n in range(60):
            store.save_delta(SID, delta(msg(f"e{n}", parent), leaf=f"e{n}"))
            parent = f"e{n}"
        data = loaded(store, SID)
        assert ids(data) == [f"e{n}" for n in range(60)]
        assert data.version == 60

    def test_content_is_compared_with_the_current_version_of_an_entry(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save(SID, SessionData(entries=[msg("a", None, "v1")], leaf_id="a"))
        store.save(SID, SessionData(entries=[msg("a", None, "v2")], leaf_id="a"))
        result = store.save_delta(SID, delta(msg("a", None, "v2")))
        assert result.skipped == ("a",)
        assert not result.changed
        with unchanged(backend, SID), pytest.raises(IdConflictError):
            store.save_delta(SID, delta(msg("a", None, "v1")))

    def test_content_is_compared_with_the_last_content_before_removal(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save(SID, SessionData(entries=[msg("r"), msg("a", "r", "v1")], leaf_id="r"))
        store.save(SID, SessionData(entries=[msg("r"), msg("a", "r", "v2")], leaf_id="r"))
        store.save_delta(SID, delta(removed=["a"]))
        with unchanged(backend, SID):
            result = store.save_delta(SID, delta(msg("a", "r", "v2")))
        assert "a" not in result.appended
        with unchanged(backend, SID), pytest.raises(IdConflictError):
            store.save_delta(SID, delta(msg("a", "r", "v1")))
