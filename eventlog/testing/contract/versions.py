"""Versions, expected_version, at_version and concurrent writers (DESIGN.md 2, Precise rules)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from eventlog import (
    ConcurrencyError,
    Entry,
    InvalidInputError,
    InvalidLeafError,
    RawJSON,
    SaveResult,
    SessionData,
    Store,
)

from .._backend import BackendLike
from ..threads import run_threads
from ._helpers import SID, chain, delta, ids, loaded, msg, raw_bytes, unchanged

Write = Callable[[Store, str, int | None], SaveResult]


def _write_delta(store: Store, sid: str, expected: int | None) -> SaveResult:
    return store.save_delta(sid, delta(msg("x", text=str(expected))), expected_version=expected)


def _write_snapshot(store: Store, sid: str, expected: int | None) -> SaveResult:
    data = SessionData(entries=[msg("x", text=str(expected))], leaf_id="x")
    return store.save(sid, data, expected_version=expected)


WRITES = pytest.mark.parametrize("write", [_write_delta, _write_snapshot], ids=["delta", "save"])


def _history(store: Store) -> dict[int, SessionData]:
    """Five versions that change entries, leaf and metadata in turn."""
    steps: list[Callable[[], SaveResult]] = [
        lambda: store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b", metadata={"v": 1})),
        lambda: store.save_delta(SID, delta(msg("c", "b"), leaf="c")),
        lambda: store.save_delta(SID, delta(removed=["b"], metadata={"v": 3})),
        lambda: store.save(
            SID,
            SessionData(
                entries=[msg("c", "b"), msg("a", None, "edited"), msg("b", "a", "back")],
                leaf_id="a",
                metadata={"v": 3},
            ),
        ),
        lambda: store.save_delta(SID, delta(leaf=None)),
    ]
    history = {}
    for step in steps:
        version = step().version
        history[version] = loaded(store, SID)
    assert sorted(history) == [1, 2, 3, 4, 5]
    return history


class VersionsContract:
    """Versions, expected_version, at_version and concurrent writers."""

    def test_each_changing_write_bumps_the_version_by_one(self, store: Store) -> None:
        versions = [
            store.save_delta(SID, delta(msg("a"), leaf="a")).version,
            store.save(SID, SessionData(entries=chain(["a", "b"]), leaf_id="b")).version,
            store.save_delta(SID, delta(removed=["a"])).version,
            store.save_delta(SID, delta(metadata={"m": 1})).version,
            store.save(SID, SessionData(entries=chain(["b"]), leaf_id=None)).version,
        ]
        assert versions == [1, 2, 3, 4, 5]
        assert loaded(store, SID).version == 5

    def test_noop_writes_keep_the_version(self, backend: BackendLike, store: Store) -> None:
        first = delta(*chain(["a", "b"]), leaf="b", metadata={"m": 1})
        store.save_delta(SID, first)
        with unchanged(backend, SID):
            results = [
                store.save_delta(SID, first),
                store.save_delta(SID, delta(removed=["unknown"])),
                store.save_delta(SID, delta(leaf="b")),
                store.save_delta(SID, delta(metadata={"m": 1})),
                store.save_delta(SID, delta()),
                store.save(
                    SID, SessionData(entries=chain(["a", "b"]), leaf_id="b", metadata={"m": 1})
                ),
            ]
        assert [result.version for result in results] == [1] * 6
        assert not any(result.changed for result in results)

    def test_versions_are_per_session(self, store: Store) -> None:
        store.save_delta("one", delta(msg("a")))
        store.save_delta("one", delta(msg("b")))
        assert store.save_delta("two", delta(msg("a"))).version == 1
        assert loaded(store, "one").version == 2

    @WRITES
    def test_expected_version_zero_creates(self, store: Store, write: Write) -> None:
        assert write(store, SID, 0).version == 1

    @WRITES
    def test_expected_version_zero_on_existing_session_raises(
        self, backend: BackendLike, store: Store, write: Write
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        store.save_delta(SID, delta(msg("b")))
        with unchanged(backend, SID), pytest.raises(ConcurrencyError) as caught:
            write(store, SID, 0)
        assert caught.value.expected_version == 0
        assert caught.value.actual_version == 2
        assert caught.value.session_id == SID

    @WRITES
    def test_stale_expected_version_raises_and_writes_nothing(
        self, backend: BackendLike, store: Store, write: Write
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        store.save_delta(SID, delta(msg("b")))
        with unchanged(backend, SID), pytest.raises(ConcurrencyError) as caught:
            write(store, SID, 1)
        assert caught.value.expected_version == 1
        assert caught.value.actual_version == 2

    @WRITES
    def test_future_expected_version_raises(
        self, backend: BackendLike, store: Store, write: Write
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(ConcurrencyError) as caught:
            write(store, SID, 5)
        assert caught.value.actual_version == 1

    @WRITES
    def test_expected_version_on_missing_session_raises(
        self, backend: BackendLike, store: Store, write: Write
    ) -> None:
        with unchanged(backend, SID), pytest.raises(ConcurrencyError) as caught:
            write(store, SID, 1)
        assert caught.value.expected_version == 1
        assert caught.value.actual_version == 0
        assert store.load(SID) is None

    @WRITES
    def test_matching_expected_version_succeeds(self, store: Store, write: Write) -> None:
        store.save_delta(SID, delta(msg("a")))
        assert write(store, SID, 1).version == 2

    def test_matching_expected_version_on_noop_keeps_version(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        result = store.save_delta(SID, delta(msg("a")), expected_version=1)
        assert result.version == 1
        assert not result.changed

    def test_stale_replay_raises_concurrency_not_leaf_error(
        self, backend: BackendLike, store: Store
    ) -> None:
        first = delta(*chain(["a", "b"]), leaf="b")
        store.save_delta(SID, first, expected_version=0)
        store.save_delta(SID, delta(removed=["b"], leaf="a"), expected_version=1)
        with unchanged(backend, SID), pytest.raises(ConcurrencyError):
            store.save_delta(SID, first, expected_version=1)
        with unchanged(backend, SID), pytest.raises(InvalidLeafError):
            store.save_delta(SID, first)

    def test_at_version_restores_entries_leaf_and_metadata(self, store: Store) -> None:
        history = _history(store)
        for version, expected in history.items():
            got = loaded(store, SID, at_version=version)
            assert got == expected
            assert got.version == version
        assert ids(loaded(store, SID, at_version=3)) == ["a", "c"]
        assert loaded(store, SID, at_version=3).metadata == {"v": 3}
        assert loaded(store, SID, at_version=2).metadata == {"v": 1}
        assert loaded(store, SID, at_version=2).leaf_id == "c"

    def test_at_version_shows_content_before_supersede(self, store: Store) -> None:
        store.save(SID, SessionData(entries=[msg("a", None, "old")], leaf_id="a"))
        store.save(SID, SessionData(entries=[msg("a", None, "new")], leaf_id="a"))
        assert loaded(store, SID, at_version=1).entries == [msg("a", None, "old")]
        assert loaded(store, SID, at_version=2).entries == [msg("a", None, "new")]

    def test_at_version_keeps_order_before_reorder(self, store: Store) -> None:
        entries = chain(["a", "b", "c"])
        store.save(SID, SessionData(entries=entries, leaf_id="c"))
        store.save(SID, SessionData(entries=[entries[2], entries[0], entries[1]], leaf_id="c"))
        assert ids(loaded(store, SID, at_version=1)) == ["a", "b", "c"]
        assert ids(loaded(store, SID, at_version=2)) == ["c", "a", "b"]

    def test_at_version_with_raw_gives_the_old_bytes(self, store: Store) -> None:
        store.save(SID, SessionData(entries=[Entry(id="a", payload=RawJSON(b'{"x": 1}'))]))
        store.save(SID, SessionData(entries=[Entry(id="a", payload=RawJSON(b'{"x":  2}'))]))
        old = loaded(store, SID, at_version=1, raw=True).entries[0].payload
        assert raw_bytes(old) == b'{"x": 1}'

    def test_at_current_version_equals_load(self, store: Store) -> None:
        _history(store)
        assert loaded(store, SID, at_version=5) == loaded(store, SID)

    @pytest.mark.parametrize("version", [0, -1, 6, 1000])
    def test_at_version_the_session_never_had_is_invalid(self, store: Store, version: int) -> None:
        _history(store)
        with pytest.raises(InvalidInputError) as caught:
            store.load(SID, at_version=version)
        assert caught.value.session_id == SID

    def test_concurrent_deltas_all_land(self, store: Store) -> None:
        threads_count, deltas_per_thread = 6, 8

        def writer(worker: int) -> None:
            for n in range(deltas_per_thread):
                first = f"w{worker}-{n}-1"
                second = f"w{worker}-{n}-2"
                store.save_delta(
                    SID,
                    delta(msg(first), msg(second, first), leaf=second, metadata={"w": worker}),
                )

        errors = run_threads(threads_count, writer)
        assert errors == []
        data = loaded(store, SID)
        order = ids(data)
        assert len(order) == threads_count * deltas_per_thread * 2
        assert len(set(order)) == len(order)
        for worker in range(threads_count):
            positions = [order.index(f"w{worker}-{n}-1") for n in range(deltas_per_thread)]
            assert positions == sorted(positions)
            for n in range(deltas_per_thread):
                assert order.index(f"w{worker}-{n}-2") == order.index(f"w{worker}-{n}-1") + 1
        assert data.version == threads_count * deltas_per_thread
        assert data.leaf_id is not None
        assert data.leaf_id.endswith(f"-{deltas_per_thread - 1}-2")
        assert data.metadata == {"w": int(data.leaf_id[1:].split("-")[0])}
