"""path: the branch from root to leaf; orphans end the walk; cycles are corruption."""

from __future__ import annotations

import pytest

from eventlog import (
    CorruptionError,
    InvalidLeafError,
    SessionData,
    SessionNotFoundError,
    Store,
)

from ._helpers import SID, chain, delta, msg


def _tree(store: Store) -> None:
    """a - b - c (leaf), with a side branch b - d, and e a second root."""
    store.save_delta(SID, delta(*chain(["a", "b", "c"]), msg("d", "b"), msg("e"), leaf="c"))


class PathContract:
    """path: the branch from root to leaf; orphans end the walk; cycles are corruption."""

    def test_path_runs_from_root_to_the_session_leaf(self, store: Store) -> None:
        _tree(store)
        assert [entry.id for entry in store.path(SID)] == ["a", "b", "c"]

    def test_path_to_another_leaf_follows_that_branch(self, store: Store) -> None:
        _tree(store)
        assert [entry.id for entry in store.path(SID, leaf_id="d")] == ["a", "b", "d"]
        assert [entry.id for entry in store.path(SID, leaf_id="e")] == ["e"]
        assert [entry.id for entry in store.path(SID, leaf_id="a")] == ["a"]

    def test_path_returns_the_stored_entries(self, store: Store) -> None:
        entries = chain(["a", "b"])
        store.save_delta(SID, delta(*entries, leaf="b"))
        assert store.path(SID) == entries

    def test_path_without_a_leaf_is_empty(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf=None))
        assert store.path(SID) == []

    def test_removed_parent_ends_the_walk(self, store: Store) -> None:
        _tree(store)
        store.save_delta(SID, delta(removed=["b"]))
        assert [entry.id for entry in store.path(SID)] == ["c"]

    def test_unknown_parent_ends_the_walk(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("x", "never-stored"), msg("y", "x"), leaf="y"))
        assert [entry.id for entry in store.path(SID)] == ["x", "y"]

    def test_path_follows_superseded_parent_links(self, store: Store) -> None:
        _tree(store)
        store.save(
            SID,
            SessionData(
                entries=[*chain(["a", "b"]), msg("c", "e"), msg("d", "b"), msg("e")],
                leaf_id="c",
            ),
        )
        assert [entry.id for entry in store.path(SID)] == ["e", "c"]

    def test_cycle_raises_corruption_instead_of_looping(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a", "b"), msg("b", "a"), leaf="a"))
        with pytest.raises(CorruptionError) as caught:
            store.path(SID)
        assert caught.value.session_id == SID

    def test_longer_cycle_behind_the_leaf_raises_corruption(self, store: Store) -> None:
        store.save_delta(
            SID, delta(msg("a", "c"), msg("b", "a"), msg("c", "b"), msg("tip", "a"), leaf="tip")
        )
        with pytest.raises(CorruptionError):
            store.path(SID)

    def test_deep_path_does_not_recurse(self, store: Store) -> None:
        names = [f"e{n}" for n in range(3000)]
        store.save_delta(SID, delta(*chain(names), leaf=names[-1]))
        path = store.path(SID)
        assert [entry.id for entry in path] == names

    def test_path_of_missing_session_raises(self, store: Store) -> None:
        with pytest.raises(SessionNotFoundError) as caught:
            store.path("nope")
        assert caught.value.session_id == "nope"

    @pytest.mark.parametrize("leaf", ["unknown", "b"])
    def test_path_to_a_leaf_that_is_not_live_raises(self, store: Store, leaf: str) -> None:
        _tree(store)
        store.save_delta(SID, delta(removed=["b"]))
        with pytest.raises(InvalidLeafError):
            store.path(SID, leaf_id=leaf)
