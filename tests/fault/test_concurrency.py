"""Scenarios 1-3 of the reliability issue: threads writing at once lose nothing.

Each scenario has a deliberately broken variant the checker must catch, so a
checker that cannot fail would show up here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pgserver
import pytest

import eventlog
from eventlog import Entry, SaveResult, SessionDelta
from eventlog.memory import MemoryStore
from eventlog.testing import run_threads

from .checker import RawRows, check_session, memory_rows, postgres_rows, sqlite_rows
from .figures import Figures, measured

pytestmark = pytest.mark.fault


@dataclass
class Target:
    """A store under test, how to read its raw records, and the backend's name."""

    store: eventlog.Store
    raw_rows: RawRows
    backend: str


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "sqlite":
        path = tmp_path / "fault.db"
        store = eventlog.connect(f"sqlite:///{path}")
        raw_rows = sqlite_rows(path)
    else:
        dsn: str = request.getfixturevalue("server_dsn")
        schema: str = request.getfixturevalue("schema")
        # 16 writer threads at most: give each its own connection.
        store = eventlog.connect(pgserver.with_search_path(dsn, schema), max_size=16)
        raw_rows = postgres_rows(dsn, schema)
    try:
        yield Target(store, raw_rows, request.param)
    finally:
        store.close()


def _run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run the workers at once; the first error of a worker is the scenario's error."""
    errors = run_threads(count, work)
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


def test_eight_threads_on_one_session_lose_and_duplicate_nothing(target: Target) -> None:
    store, raw_rows = target.store, target.raw_rows
    with measured("1. one session, 8 threads x 200 deltas", target.backend) as figures:
        acknowledged = _one_session_writers(store, threads=8, deltas=200)
        figures.operations = 1600
        verdict = check_session(store, raw_rows, "one", acknowledged)
        figures.lost, figures.duplicated = len(verdict.lost), len(verdict.duplicated)
        figures.notes = f"{len(acknowledged)} entries, seq gaps {len(verdict.seq_gaps)}"
    assert len(acknowledged) == 3200
    assert verdict.exactly_once, verdict
    assert store.load("one").version == 1600  # type: ignore[union-attr]


def test_sixty_four_sessions_with_four_writers_each(target: Target) -> None:
    store, raw_rows = target.store, target.raw_rows
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

    with measured("2. 64 sessions x 4 writers x 50 deltas", target.backend) as figures:
        _run_threads(16, work)
        figures.operations = 64 * 4 * 50
        verdicts = {
            session_id: check_session(store, raw_rows, session_id, ids)
            for session_id, ids in acknowledged.items()
        }
        figures.lost = sum(len(v.lost) for v in verdicts.values())
        figures.duplicated = sum(len(v.duplicated) for v in verdicts.values())
        gaps = sum(len(v.seq_gaps) for v in verdicts.values())
        figures.notes = f"{sum(map(len, acknowledged.values()))} entries, seq gaps {gaps}"
    for session_id, ids in acknowledged.items():
        assert len(ids) == 200
        assert verdicts[session_id].exactly_once, (session_id, verdicts[session_id])


def _optimistic_writers(
    store: eventlog.Store, raw_rows: RawRows, figures: Figures, *, rounds: int, lockstep: bool
) -> list[str]:
    """4 writers doing read-modify-save with expected_version; returns what broke the rules.

    With `lockstep`, all four read before any of them writes, so every round
    has three losers: deterministic conflicts for the broken variant.
    """
    store.save_delta("opt", SessionDelta(metadata={"writes": 0}), expected_version=0)
    wins: list[tuple[int, str]] = []
    losses: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def work(index: int) -> None:
        for attempt in range(rounds):
            current = store.load("opt")
            assert current is not None and isinstance(current.metadata, dict)
            if lockstep:
                barrier.wait()
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
            else:
                with lock:
                    wins.append((result.version, entry_id))
            if lockstep:
                barrier.wait()

    _run_threads(4, work)
    final = store.load("opt")
    assert final is not None and isinstance(final.metadata, dict)
    verdict = check_session(store, raw_rows, "opt", [entry_id for _, entry_id in wins])
    landed_losers = {entry.id for entry in final.entries} & set(losses)
    versions = sorted(version for version, _ in wins)
    # A lost update: a win whose read-modify-write did not see the previous win.
    lost_updates = len(wins) - final.metadata["writes"]
    figures.operations = 4 * rounds
    figures.lost = len(verdict.lost) + lost_updates
    figures.duplicated = len(verdict.duplicated)
    figures.notes = (
        f"{len(wins)} won, {len(losses)} got ConcurrencyError, "
        f"{len(landed_losers)} losers landed, {lost_updates} lost updates"
    )
    problems = []
    if versions != list(range(2, 2 + len(wins))):
        problems.append("versions are not strictly sequential")
    if lost_updates:
        problems.append(f"{lost_updates} lost updates")
    if not verdict.exactly_once:
        problems.append(f"not exactly once: {verdict}")
    if not losses:
        problems.append("no writer ever lost: expected_version was not checked")
    if landed_losers:
        problems.append("a loser's write landed")
    return problems


def test_optimistic_writers_see_sequential_versions(target: Target) -> None:
    with measured("3. optimistic locking, 4 writers x 60", target.backend) as figures:
        problems = _optimistic_writers(
            target.store, target.raw_rows, figures, rounds=60, lockstep=False
        )
    assert not problems


class _IgnoresExpectedVersion(MemoryStore):
    """Broken on purpose: expected_version is dropped, so concurrent updates overwrite."""

    def save_delta(  # type: ignore[override]
        self, session_id: str, delta: SessionDelta, /, *, expected_version: int | None = None
    ) -> SaveResult:
        return super().save_delta(session_id, delta)


def test_checker_reports_lost_updates_when_expected_version_is_ignored() -> None:
    store = _IgnoresExpectedVersion()
    with measured("3. broken: expected_version ignored", "memory", broken_variant=True) as figures:
        problems = _optimistic_writers(store, memory_rows(store), figures, rounds=20, lockstep=True)
    assert "60 lost updates" in problems
    assert "no writer ever lost: expected_version was not checked" in problems


class _AcknowledgeWithoutCommit(MemoryStore):
    """Broken on purpose: every write is rolled back but still reported as done."""

    @contextmanager
    def _write(self):  # type: ignore[no-untyped-def, override]
        with super()._read() as tx:
            yield tx


class _NoIdempotency(MemoryStore):
    """Broken on purpose: ids already stored are not looked up, so retries append again."""

    @contextmanager
    def _write(self):  # type: ignore[no-untyped-def, override]
        with super()._write() as tx:
            tx.latest_records = lambda session_id, ids: {}  # type: ignore[method-assign]
            yield tx


def test_checker_reports_loss_when_writes_are_acknowledged_but_dropped() -> None:
    store = _AcknowledgeWithoutCommit()
    with measured(
        "1. broken: acknowledged, not committed", "memory", broken_variant=True
    ) as figures:
        acknowledged = _one_session_writers(store, threads=4, deltas=20)
        verdict = check_session(store, memory_rows(store), "one", acknowledged)
        figures.operations = 80
        figures.lost, figures.duplicated = len(verdict.lost), len(verdict.duplicated)
    assert not verdict.exactly_once
    assert len(verdict.lost) == len(acknowledged)


def test_checker_reports_duplicates_when_retries_are_not_idempotent() -> None:
    store = _NoIdempotency()
    delta = SessionDelta([Entry("a"), Entry("b", "a")])
    with measured("2. broken: idempotency off", "memory", broken_variant=True) as figures:
        for _ in range(3):  # the caller retries after an unknown outcome
            store.save_delta("retry", delta)
        verdict = check_session(store, memory_rows(store), "retry", ["a", "b"])
        figures.operations, figures.faults = 3, 2
        figures.lost, figures.duplicated = len(verdict.lost), len(verdict.duplicated)
    assert verdict.duplicated == ["a", "b"]
