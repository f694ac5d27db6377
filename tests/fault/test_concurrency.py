"""Scenarios 1-3 of the reliability issue: threads writing at once lose nothing.

Each scenario has a deliberately broken variant the checker must catch, so a
checker that cannot fail would show up here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.engine import LogStore
from eventlog.memory import MemoryStore

from .checker import RawRows, check_session, memory_rows, sqlite_rows

pytestmark = pytest.mark.fault


@pytest.fixture(params=["sqlite"])
def target(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[eventlog.Store, RawRows]]:
    path = tmp_path / "fault.db"
    store = eventlog.connect(f"sqlite:///{path}")
    try:
        yield store, sqlite_rows(path)
    finally:
        store.close()


def _run_threads(count: int, work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _one_session_writers(store: eventlog.Store, threads: int, deltas: int) -> list[str]:
    acknowledged: list[list[str]] = [[] for _ in range(threads)]

    def work(index: int) -> None:
        for turn in range(deltas):
            ids = [f"t{index}-{turn}-u", f"t{index}-{turn}-a"]
            store.save_delta(
                "one",
                SessionDelta(
                    [
                        Entry(ids[0], None, "message", None, {"n": turn}),
                        Entry(ids[1], ids[0], "message", None, {"n": turn}),
                    ]
                ),
            )
            acknowledged[index].extend(ids)

    _run_threads(threads, work)
    return [entry_id for ids in acknowledged for entry_id in ids]


def test_eight_threads_on_one_session_lose_and_duplicate_nothing(
    target: tuple[eventlog.Store, RawRows],
) -> None:
    store, raw_rows = target
    acknowledged = _one_session_writers(store, threads=8, deltas=200)
    assert len(acknowledged) == 3200
    verdict = check_session(store, raw_rows, "one", acknowledged)
    assert verdict.exactly_once, verdict
    assert store.load("one").version == 1600  # type: ignore[union-attr]


def test_sixty_four_sessions_with_four_writers_each(
    target: tuple[eventlog.Store, RawRows],
) -> None:
    store, raw_rows = target
    acknowledged: dict[str, list[str]] = {f"s{n}": [] for n in range(64)}
    lock = threading.Lock()

    def work(index: int) -> None:
        # 16 threads; each session is written by the 4 threads t with t = n (mod 4),
        # each of them 50 deltas, interleaved over its 16 sessions.
        mine = [f"s{n}" for n in range(64) if n % 4 == index % 4]
        for turn in range(50):
            for session_id in mine:
                entry_id = f"w{index}-{turn}"
                store.save_delta(session_id, SessionDelta([Entry(entry_id)]))
                with lock:
                    acknowledged[session_id].append(entry_id)

    _run_threads(16, work)
    for session_id, ids in acknowledged.items():
        assert len(ids) == 200
        verdict = check_session(store, raw_rows, session_id, ids)
        assert verdict.exactly_once, (session_id, verdict)


def test_optimistic_writers_see_sequential_versions(
    target: tuple[eventlog.Store, RawRows],
) -> None:
    store, raw_rows = target
    store.save_delta("opt", SessionDelta(metadata={"writes": 0}), expected_version=0)
    wins: list[tuple[int, str]] = []
    losses: list[str] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        for attempt in range(60):
            current = store.load("opt")
            assert current is not None
            entry_id = f"w{index}-{attempt}"
            delta = SessionDelta(
                [Entry(entry_id)],
                leaf_id=entry_id,
                metadata={"writes": current.metadata["writes"] + 1},
            )
            try:
                result = store.save_delta("opt", delta, expected_version=current.version)
            except eventlog.ConcurrencyError as exc:
                assert exc.expected_version == current.version
                assert exc.actual_version is not None and exc.actual_version > current.version
                with lock:
                    losses.append(entry_id)
                continue
            with lock:
                wins.append((result.version, entry_id))

    _run_threads(4, work)
    versions = sorted(version for version, _ in wins)
    assert versions == list(range(2, 2 + len(wins))), "versions are not strictly sequential"
    final = store.load("opt")
    assert final is not None and final.metadata == {"writes": len(wins)}
    verdict = check_session(store, raw_rows, "opt", [entry_id for _, entry_id in wins])
    assert verdict.exactly_once, verdict
    live = {entry.id for entry in final.entries}
    assert losses and not live & set(losses), "a loser's write landed"


class _AcknowledgeWithoutCommit(MemoryStore):
    """Broken on purpose: every write is rolled back but still reported as done."""

    @contextmanager
    def _write(self):  # type: ignore[no-untyped-def, override]
        with super()._read() as tx:
            yield tx


class _NoIdempotency(MemoryStore):
    """Broken on purpose: ids already stored are not looked up, so retries append again."""

    def _run(self, operation):  # type: ignore[no-untyped-def, override]
        return LogStore._run(_Blind(self), operation)


class _Blind:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    @contextmanager
    def _write(self):  # type: ignore[no-untyped-def]
        with self._store._write() as tx:
            tx.latest_records = lambda session_id, ids: {}  # type: ignore[method-assign]
            yield tx

    def _read(self):  # type: ignore[no-untyped-def]
        return self._store._read()


def test_checker_reports_loss_when_writes_are_acknowledged_but_dropped() -> None:
    store = _AcknowledgeWithoutCommit()
    acknowledged = _one_session_writers(store, threads=4, deltas=20)
    verdict = check_session(store, memory_rows(store), "one", acknowledged)
    assert not verdict.exactly_once
    assert len(verdict.lost) == len(acknowledged)


def test_checker_reports_duplicates_when_retries_are_not_idempotent() -> None:
    store = _NoIdempotency()
    delta = SessionDelta([Entry("a"), Entry("b", "a")])
    for _ in range(3):  # the caller retries after an unknown outcome
        store.save_delta("retry", delta)
    verdict = check_session(store, memory_rows(store), "retry", ["a", "b"])
    assert verdict.duplicated == ["a", "b"]
