"""watch: the stored changes, then each new version as it commits; ends on delete or close."""

from __future__ import annotations

import pytest

from eventlog import UNSET, Change, HistoryPurgedError, InvalidInputError, SessionData, Store

from ..watcher import ThreadedWatcher
from ._helpers import SID, as_any, chain, delta, msg
from .bad_input import BAD_AFTER_VERSION_NAMES, BAD_AFTER_VERSIONS


def _versions(changes: list[Change]) -> list[int]:
    return [change.version for change in changes]


def _appended(changes: list[Change]) -> list[list[str]]:
    return [[entry.id for entry in change.appended] for change in changes]


class WatchContract:
    """watch: the stored changes, then each new version as it commits; ends on delete or close."""

    def test_watch_yields_the_stored_changes_then_new_ones_as_they_commit(
        self, store: Store
    ) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b"))
        store.save_delta(SID, delta(msg("c", "b"), leaf="c"))
        watcher = ThreadedWatcher(store, SID)
        try:
            stored = watcher.take(2)
            assert _versions(stored) == [1, 2]
            assert _appended(stored) == [["a", "b"], ["c"]]
            for index in range(3):  # written while the watcher waits in its thread
                store.save_delta(SID, delta(msg(f"n{index}", "c"), leaf=f"n{index}"))
                (live,) = watcher.take(1)
                assert live.version == 3 + index
                assert [entry.id for entry in live.appended] == [f"n{index}"]
                assert live.leaf_id == f"n{index}"
        finally:
            store.delete(SID)
        assert watcher.wait_ended() == []
        assert watcher.error is None

    def test_changes_written_together_arrive_in_order_and_once(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        watcher = ThreadedWatcher(store, SID)
        for index in range(20):  # faster than the watcher reads: it catches up
            store.save_delta(SID, delta(msg(f"e{index}")))
        assert _versions(watcher.take(21)) == list(range(1, 22))
        store.delete(SID)
        assert watcher.wait_ended() == []

    def test_watch_after_a_version_starts_after_it(self, store: Store) -> None:
        for index in range(4):
            store.save_delta(SID, delta(msg(f"e{index}")))
        watcher = ThreadedWatcher(store, SID, after_version=2)
        assert _versions(watcher.take(2)) == [3, 4]
        store.save_delta(SID, delta(msg("late")))
        assert _versions(watcher.take(1)) == [5]
        store.delete(SID)
        assert watcher.wait_ended() == []

    def test_watch_ahead_of_the_session_waits_for_that_version(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        watcher = ThreadedWatcher(store, SID, after_version=2)
        store.save_delta(SID, delta(msg("b")))  # version 2: not after 2
        store.save_delta(SID, delta(msg("c")))
        assert _versions(watcher.take(1)) == [3]
        store.delete(SID)
        assert watcher.wait_ended() == []

    def test_watch_reports_removals_replacements_leaf_and_metadata(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b", metadata={"m": 1}))
        watcher = ThreadedWatcher(store, SID)
        first = watcher.take(1)[0]
        assert first.metadata == {"m": 1}
        store.save_delta(SID, delta(removed=["b"], leaf="a"))
        removal = watcher.take(1)[0]
        assert removal.removed_ids == ["b"] and removal.leaf_id == "a"
        assert removal.metadata is UNSET
        store.save(SID, SessionData(entries=[msg("a", text="edited")], leaf_id="a"))
        edit = watcher.take(1)[0]
        assert [entry.payload for entry in edit.replaced] == [{"role": "user", "text": "edited"}]
        store.delete(SID)
        assert watcher.wait_ended() == []

    def test_a_replayed_delta_adds_no_change(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        watcher = ThreadedWatcher(store, SID)
        assert _versions(watcher.take(1)) == [1]
        store.save_delta(SID, delta(msg("a")))  # skipped: no new version
        store.save_delta(SID, delta(msg("b")))
        assert _versions(watcher.take(1)) == [2]
        store.delete(SID)
        assert watcher.wait_ended() == []

    def test_watch_ends_when_the_session_is_deleted(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        watcher = ThreadedWatcher(store, SID)
        watcher.take(1)
        assert store.delete(SID)
        assert watcher.wait_ended() == []
        assert watcher.error is None

    def test_watch_ends_when_the_session_is_deleted_and_created_again(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        watcher = ThreadedWatcher(store, SID)
        watcher.take(1)
        # Whether the watcher reads between the two or not, the session it
        # watched is gone: it never yields the new session's versions.
        store.delete(SID)
        for index in range(3):
            store.save_delta(SID, delta(msg(f"new{index}")))
        assert watcher.wait_ended() == []
        assert watcher.error is None

    def test_watch_of_a_missing_session_ends_at_once(self, store: Store) -> None:
        assert list(store.watch("never-written")) == []

    def test_watch_ends_when_the_store_closes(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        watchers = [ThreadedWatcher(store, SID) for _ in range(3)]
        for watcher in watchers:
            watcher.take(1)
        store.close()  # the watchers wait in their threads; close must not hang
        for watcher in watchers:
            assert watcher.wait_ended() == []
            assert watcher.error is None

    def test_watch_on_a_closed_store_ends_at_once(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        store.close()
        assert list(store.watch(SID)) == []

    def test_a_closed_iterator_leaves_the_store_working(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        iterator = store.watch(SID)
        assert next(iterator).version == 1
        as_any(iterator).close()
        with pytest.raises(StopIteration):
            next(iterator)
        store.save_delta(SID, delta(msg("b")))
        second = store.watch(SID, after_version=1)
        assert next(second).version == 2
        as_any(second).close()

    def test_watch_below_the_purge_floor_raises_history_purged(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        store.save_delta(SID, delta(removed=["a"]))
        store.purge(SID)
        store.save_delta(SID, delta(msg("b")))
        with pytest.raises(HistoryPurgedError):
            next(store.watch(SID))

    @pytest.mark.parametrize("bad", BAD_AFTER_VERSIONS, ids=BAD_AFTER_VERSION_NAMES)
    def test_a_bad_after_version_raises_at_the_call(self, store: Store, bad: object) -> None:
        store.save_delta(SID, delta(msg("a")))
        with pytest.raises(InvalidInputError) as caught:
            store.watch(SID, after_version=as_any(bad))
        assert caught.value.session_id == SID
        assert caught.value.where == "after_version"
