"""changes: the log version by version; folding versions 1..v gives load(at_version=v)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from eventlog import (
    UNSET,
    Change,
    Entry,
    HistoryPurgedError,
    InvalidInputError,
    RawJSON,
    SessionData,
    Store,
    fold_changes,
)

from .._backend import BackendLike
from ._helpers import SID, as_any, assert_where, chain, delta, loaded, msg, unchanged
from .bad_input import (
    BAD_AFTER_VERSION_NAMES,
    BAD_AFTER_VERSIONS,
    BAD_LIMIT_NAMES,
    BAD_LIMITS,
)


def _only(store: Store, version: int) -> Change:
    """The change of one version."""
    page = store.changes(SID, after_version=version - 1, limit=1)
    assert [change.version for change in page.items] == [version]
    return page.items[0]


def _ids(entries: Sequence[Entry]) -> list[str]:
    return [entry.id for entry in entries]


def _all(store: Store, session_id: str = SID, after_version: int = 0) -> list[Change]:
    page = store.changes(session_id, after_version=after_version, limit=10_000)
    assert page.next_version is None
    return page.items


class ChangesContract:
    """changes: each kind of version, paging, purge floor, bad input."""

    def test_a_missing_session_is_an_empty_page(self, store: Store) -> None:
        page = store.changes("nobody")
        assert page.items == [] and page.next_version is None

    def test_the_first_append_is_version_1_with_its_entries_leaf_and_metadata(
        self, store: Store
    ) -> None:
        entries = chain(["a", "b"])
        store.save_delta(SID, delta(*entries, leaf="b", metadata={"m": 1}))
        change = _only(store, 1)
        assert change.appended == entries
        assert change.replaced == [] and change.removed_ids == []
        assert change.leaf_id == "b" and change.metadata == {"m": 1}
        assert change.created_at == loaded(store, SID).updated_at
        assert change.created_at.utcoffset() == timedelta(0)

    def test_a_first_delta_without_metadata_writes_the_empty_object(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        assert _only(store, 1).metadata == {}

    def test_an_append_keeps_metadata_unset(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a", metadata={"m": 1}))
        store.save_delta(SID, delta(msg("b", "a"), leaf="b"))
        change = _only(store, 2)
        assert _ids(change.appended) == ["b"]
        assert change.metadata is UNSET and change.leaf_id == "b"

    def test_a_save_that_changes_content_replaces_in_place(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="c"))
        edited = msg("b", "a", "edited")
        store.save(SID, SessionData([*chain(["a"]), edited, msg("c", "b", "t-c")], leaf_id="c"))
        change = _only(store, 2)
        assert change.replaced == [edited]
        assert change.appended == [] and change.removed_ids == []

    def test_a_removal_lists_the_removed_ids(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="a"))
        store.save_delta(SID, delta(removed=["c", "b"]))
        change = _only(store, 2)
        assert sorted(change.removed_ids) == ["b", "c"]
        assert change.appended == [] and change.replaced == [] and change.leaf_id == "a"

    def test_a_save_revives_a_removed_id_by_appending_it(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="a"))
        store.save_delta(SID, delta(removed=["b"]))
        store.save(SID, SessionData(chain(["a", "b"]), leaf_id="b"))
        change = _only(store, 3)
        assert _ids(change.appended) == ["b"] and change.removed_ids == []
        assert change.leaf_id == "b"

    def test_a_save_that_reorders_moves_entries_to_the_end(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), msg("b"), msg("c"), leaf="c"))
        store.save(SID, SessionData([msg("a"), msg("c"), msg("b")], leaf_id="c"))
        change = _only(store, 2)
        assert _ids(change.appended) == ["b"]  # a, c stay in order; b goes to the end
        assert change.removed_ids == [] and change.replaced == []
        assert _ids(fold_changes(_all(store)).entries) == ["a", "c", "b"]

    def test_a_metadata_change_alone_is_a_version_with_no_entries(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        store.save_delta(SID, delta(metadata={"title": "x"}))
        change = _only(store, 2)
        assert change.metadata == {"title": "x"} and change.leaf_id == "a"
        assert change.appended == change.replaced == [] and change.removed_ids == []

    def test_a_leaf_change_alone_keeps_metadata_unset(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), msg("b"), leaf="a"))
        store.save_delta(SID, delta(leaf="b"))
        change = _only(store, 2)
        assert change.leaf_id == "b" and change.metadata is UNSET
        assert change.appended == change.replaced == [] and change.removed_ids == []

    def test_a_write_that_changes_nothing_adds_no_change(self, store: Store) -> None:
        first = delta(msg("a"), leaf="a")
        store.save_delta(SID, first)
        store.save_delta(SID, first)
        assert [change.version for change in _all(store)] == [1]

    def test_a_fork_is_one_version_with_the_copied_entries(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), msg("x", "a"), leaf="c"))
        store.save_delta(SID, delta(removed=["x"], metadata={"m": 2}))
        store.fork(SID, "fork", at_entry_id="b")
        (change,) = _all(store, "fork")
        assert change.version == 1
        assert change.appended == chain(["a", "b"])
        assert change.removed_ids == [] and change.replaced == []
        assert change.leaf_id == "b" and change.metadata == {"m": 2}
        assert fold_changes([change]) == loaded(store, "fork")

    def test_pages_hold_at_most_limit_versions_and_say_where_to_go_on(self, store: Store) -> None:
        for n in range(5):
            store.save_delta(SID, delta(msg(f"e{n}")))
        seen: list[int] = []
        after: int | None = 0
        pages = 0
        while after is not None:
            page = store.changes(SID, after_version=after, limit=2)
            seen += [change.version for change in page.items]
            after = page.next_version
            pages += 1
        assert seen == [1, 2, 3, 4, 5] and pages == 3
        assert store.changes(SID, after_version=1, limit=2).next_version == 3
        assert store.changes(SID, after_version=3, limit=2).next_version is None

    def test_a_reader_at_or_past_the_current_version_gets_an_empty_page(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        store.save_delta(SID, delta(msg("b")))
        for after in (2, 3, 10**12):
            page = store.changes(SID, after_version=after)
            assert page.items == [] and page.next_version is None

    def test_every_version_folds_to_load_at_that_version(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="c", metadata={"v": 1}))
        store.save(SID, SessionData([msg("c", "b", "t-c"), *chain(["a", "b"], text="u")]))
        store.save_delta(SID, delta(msg("d", "a"), removed=["b"], leaf="d"))
        store.save_delta(SID, delta(metadata={"v": 2}, leaf=None))
        changes = _all(store)
        for version in range(1, len(changes) + 1):
            assert fold_changes(changes[:version]) == loaded(store, SID, at_version=version)

    def test_raw_changes_carry_the_stored_bytes(self, store: Store) -> None:
        payload = RawJSON(b'{ "b": 1,  "a": [ ] }')
        metadata = RawJSON(b'{"z" : 0}')
        store.save_delta(SID, delta(Entry("a", payload=payload), metadata=metadata))
        (change,) = _all_raw(store)
        assert isinstance(change.appended[0].payload, RawJSON)
        assert bytes(change.appended[0].payload) == bytes(payload)
        assert isinstance(change.metadata, RawJSON) and bytes(change.metadata) == bytes(metadata)
        assert store.changes(SID).items[0].appended[0].payload == {"b": 1, "a": []}

    def test_below_the_purge_floor_is_history_purged(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="c"))
        store.save_delta(SID, delta(removed=["b"]))
        store.save_delta(SID, delta(msg("d", "c"), leaf="d"))
        store.purge(SID)  # the floor is version 3
        for after in (0, 1, 2):
            with pytest.raises(HistoryPurgedError) as caught:
                store.changes(SID, after_version=after)
            assert caught.value.session_id == SID
            assert_where(caught.value, "after_version")
        assert store.changes(SID, after_version=3).items == []
        store.save_delta(SID, delta(msg("e", "d"), removed=["a"], leaf="e"))
        store.save(SID, SessionData([msg("e", "d"), msg("c", "b", "t-c")], leaf_id="c"))
        after_purge = _all(store, after_version=3)
        assert [change.version for change in after_purge] == [4, 5]
        start = loaded(store, SID, at_version=3)
        for count in (1, 2):
            folded = fold_changes(after_purge[:count], start=start)
            assert folded == loaded(store, SID, at_version=3 + count)

    @pytest.mark.parametrize("bad", BAD_AFTER_VERSIONS, ids=BAD_AFTER_VERSION_NAMES)
    def test_a_bad_after_version_is_rejected(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(InvalidInputError) as caught:
            store.changes(SID, after_version=as_any(bad))
        assert caught.value.session_id == SID
        assert_where(caught.value, "after_version")

    @pytest.mark.parametrize("bad", BAD_LIMITS, ids=BAD_LIMIT_NAMES)
    def test_a_bad_limit_is_rejected(self, backend: BackendLike, store: Store, bad: object) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(InvalidInputError) as caught:
            store.changes(SID, limit=as_any(bad))
        assert caught.value.session_id == SID
        assert_where(caught.value, "limit")


def _all_raw(store: Store) -> list[Change]:
    return store.changes(SID, raw=True).items
