"""Run the scenarios on one backend and collect figures.

Every figure is measured in the same run, on the same database server or
disk, for eventlog and its baselines, so the report can state ratios.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

import eventlog
from eventlog import SessionDelta

from .contenders import (
    BlobContender,
    Contender,
    EventlogContender,
    FloorContender,
    Target,
)
from .peers import Peer, discover
from .workload import TurnSource, history

__all__ = ["Progress", "Settings", "run_backend", "threaded_throughput"]

_WARMUP_TURNS = 5
_THREAD_WARMUP_TURNS = 10  # past psycopg's prepare threshold (5) on every pooled connection
_ROUNDS = 5


class Settings(msgspec.Struct, frozen=True):
    """How big and how long a run is."""

    sizes: tuple[int, ...] = (10, 100, 1000, 5000)
    turns: int = 100
    loads: int = 7
    threads: int = 8
    thread_turns: int = 100
    big_load: int = 5000

    @classmethod
    def quick(cls) -> Settings:
        return cls(sizes=(10, 100, 1000), turns=8, loads=3, thread_turns=20, big_load=1000)


class Progress:
    """Counts steps and reports them to a callback (a progress bar, or nothing)."""

    def __init__(self, report: Callable[[str], None]) -> None:
        self._report = report

    def step(self, label: str) -> None:
        self._report(label)


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000, "n": len(ordered)}


@contextmanager
def _no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _timed_turns(
    session_id: str,
    turns: Iterator[list[Any]],
    count: int,
    write: Callable[[str, list[Any]], None],
) -> list[float]:
    samples = []
    with _no_gc():
        for _ in range(count):
            entries = next(turns)
            started = time.perf_counter()
            write(session_id, entries)
            samples.append(time.perf_counter() - started)
    return samples


def _per_turn(
    contenders: dict[str, Contender],
    settings: Settings,
    progress: Progress,
    wal: Callable[[], int] | None,
) -> dict[str, Any]:
    """Appends per turn at each session length, for every contender.

    The turns run in rounds over every (size, contender) pair, so a drift of
    the machine or the database (WAL growth, checkpoints, caches) during the
    run falls on all of them alike instead of on whichever ran first.
    """
    sources: dict[tuple[str, int], Iterator[list[Any]]] = {}
    for size in settings.sizes:
        for name, contender in contenders.items():
            progress.step(f"{name}: history of {size} entries")
            source = TurnSource()
            contender.fill(f"turns-{size}", history(source, size))
            sources[name, size] = source.turns()
            for _ in range(_WARMUP_TURNS):
                contender.append_turn(f"turns-{size}", next(sources[name, size]))
    samples: dict[tuple[str, int], list[float]] = {key: [] for key in sources}
    wal_bytes: dict[tuple[str, int], int] = dict.fromkeys(sources, 0)
    rounds = min(_ROUNDS, settings.turns)
    per_round = settings.turns // rounds
    for _ in range(rounds):
        for (name, size), turns in sources.items():
            before = wal() if wal else 0
            samples[name, size] += _timed_turns(
                f"turns-{size}", turns, per_round, contenders[name].append_turn
            )
            wal_bytes[name, size] += (wal() - before) if wal else 0
    figures: dict[str, Any] = {}
    for (name, size), timings in samples.items():
        entry = _summary(timings)
        if wal:
            entry["wal_bytes_per_turn"] = wal_bytes[name, size] / len(timings)
        figures.setdefault(name, {})[str(size)] = entry
    return figures


_entry_encoder = msgspec.json.Encoder()


def _encode_each(entries: list[Any]) -> float:
    """Seconds to encode each entry once with msgspec: the floor of any compare."""
    encode = _entry_encoder.encode
    started = time.perf_counter()
    for entry in entries:
        encode(entry)
    return time.perf_counter() - started


def _snapshot_saves(
    contender: EventlogContender, settings: Settings, progress: Progress
) -> dict[str, Any]:
    """`save` of a full snapshot that differs from the stored one by one turn,
    and (`encode_ms`) the time to encode that snapshot's entries once, each
    measured right after the save it goes with."""
    figures = {}
    for size in settings.sizes:
        progress.step(f"eventlog: save snapshot at {size} entries")
        session_id = f"snapshot-{size}"
        source = TurnSource()
        contender.fill(session_id, history(source, size))
        turns = source.turns()
        for _ in range(_WARMUP_TURNS):
            contender.save_snapshot(session_id, next(turns))
        encodes: list[float] = []
        samples: list[float] = []
        with _no_gc():
            for _ in range(settings.turns):
                entries = next(turns)
                started = time.perf_counter()
                contender.save_snapshot(session_id, entries)
                samples.append(time.perf_counter() - started)
                encodes.append(_encode_each(contender.sessions[session_id]))
        figures[str(size)] = {
            **_summary(samples),
            "encode_ms": statistics.median(encodes) * 1000,
        }
    return figures


def _loads(
    contenders: dict[str, Contender], settings: Settings, progress: Progress
) -> dict[str, Any]:
    """Load of a whole session at each length (the sessions of `_per_turn`)."""
    figures: dict[str, Any] = {}
    for size in settings.sizes:
        for name, contender in contenders.items():
            progress.step(f"{name}: load at {size} entries")
            session_id = f"turns-{size}"
            samples = []
            with _no_gc():
                for _ in range(settings.loads):
                    started = time.perf_counter()
                    contender.load(session_id)
                    samples.append(time.perf_counter() - started)
            figures.setdefault(name, {})[str(size)] = _summary(samples)
    return figures


def _tombstoned_load(
    contender: EventlogContender, settings: Settings, progress: Progress
) -> dict[str, Any]:
    """Load of N live entries, with and without N tombstoned ones beside them."""
    progress.step("eventlog: load with half the entries tombstoned")
    live = settings.big_load
    plain, padded = "plain-load", "tombstoned-load"
    contender.fill(plain, history(TurnSource("p"), live))
    contender.fill(padded, history(TurnSource("t"), 2 * live))
    contender.tombstone_every_other(padded)

    # Alternated, so drift of the machine's speed falls on both alike.
    samples: dict[str, list[float]] = {plain: [], padded: []}
    with _no_gc():
        for _ in range(settings.loads):
            for session_id, timings in samples.items():
                started = time.perf_counter()
                count = contender.load(session_id)
                timings.append(time.perf_counter() - started)
                assert abs(count - live) <= 2, count
    return {
        "live": live,
        "plain_ms": statistics.median(samples[plain]) * 1000,
        "tombstoned_ms": statistics.median(samples[padded]) * 1000,
    }


def _peak_load_memory(contender: Contender, session_id: str) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        contender.load(session_id)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def threaded_throughput(contender: Contender, settings: Settings, progress: Progress) -> float:
    """Turns per second with N threads, each writing its own session."""
    progress.step(f"{contender.name}: {settings.threads}-thread throughput")
    clones = [contender.thread_clone() for _ in range(settings.threads)]
    barrier = threading.Barrier(settings.threads + 1)
    errors: list[BaseException] = []

    def worker(index: int, clone: Contender) -> None:
        source = TurnSource(f"w{index}-")
        warmup = [source.agent_turn() for _ in range(_THREAD_WARMUP_TURNS)]
        turns = [source.agent_turn() for _ in range(settings.thread_turns)]
        session_id = f"thread-{contender.name}-{index}"
        try:
            # Untimed: opens pooled connections and prepares statements, which a
            # long-running backend has done long before; the floor's connections
            # are open before its clock starts too.
            for turn in warmup:
                clone.append_turn(session_id, turn)
        except BaseException as exc:  # reported after join
            errors.append(exc)
        barrier.wait()
        if errors:
            return
        try:
            for turn in turns:
                clone.append_turn(session_id, turn)
        except BaseException as exc:  # reported after join
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(clones)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for clone in clones:
        if clone is not contender:
            clone.close()
    if errors:
        raise errors[0]
    return settings.threads * settings.thread_turns / elapsed


def _async_throughput(target: Target, settings: Settings, progress: Progress) -> float:
    """Turns per second with N asyncio tasks, each writing its own session, on one store."""
    progress.step("eventlog: async throughput")

    async def run() -> float:
        store = await eventlog.connect_async(target.eventlog_url())
        try:
            sources = [TurnSource(f"a{index}-") for index in range(settings.threads)]
            turns = [[s.agent_turn() for _ in range(settings.thread_turns)] for s in sources]

            async def task(index: int) -> None:
                for turn in turns[index]:
                    await store.save_delta(
                        f"async-{index}", SessionDelta(turn, leaf_id=turn[-1].id)
                    )

            started = time.perf_counter()
            await asyncio.gather(*(task(index) for index in range(settings.threads)))
            return settings.threads * settings.thread_turns / (time.perf_counter() - started)
        finally:
            await store.close()

    return asyncio.run(run())


def run_backend(
    targets: dict[str, Target],
    settings: Settings,
    progress: Progress,
    *,
    storage_bytes: Callable[[str], int],
    wal: Callable[[], int] | None = None,
) -> dict[str, Any]:
    """Every scenario on one backend; returns the figures as plain data.

    Peers (see `peers.py`) that import and have a target take the per-turn and
    load scenarios beside the contenders; those that do not import are listed.
    """
    found, missing = discover()
    # Keep what lives now (the peers' large imports) out of the full collections
    # `_no_gc` runs before each measurement, which would otherwise take seconds.
    gc.collect()
    gc.freeze()
    eventlog_contender = EventlogContender(targets["eventlog"])
    contenders: dict[str, Contender] = {
        "eventlog": eventlog_contender,
        "blob": BlobContender(targets["blob"]),
        "floor": FloorContender(targets["floor"]),
    }
    peers: dict[str, Peer] = {}
    measured: dict[str, Contender] = dict(contenders)
    try:
        for name, peer_class in found.items():
            if name in targets:
                measured[name] = peers[name] = peer_class(targets[name])
        figures: dict[str, Any] = {"per_turn": _per_turn(measured, settings, progress, wal)}
        # Every contender now holds the same sessions: compare their footprints.
        entries = sum(len(v) for v in eventlog_contender.sessions.values())
        figures["storage_bytes_per_entry"] = {
            name: storage_bytes(name) / entries for name in contenders
        }
        figures["load"] = _loads(measured, settings, progress)
        figures["peers"] = {name: peer.describe() for name, peer in peers.items()}
        figures["peers_not_installed"] = missing
        figures["snapshot_save"] = _snapshot_saves(eventlog_contender, settings, progress)
        figures["tombstoned_load"] = _tombstoned_load(eventlog_contender, settings, progress)
        biggest = f"turns-{max(settings.sizes)}"
        figures["peak_load_memory_bytes"] = {
            name: _peak_load_memory(c, biggest) for name, c in contenders.items()
        }
        figures["throughput_turns_per_s"] = {
            name: threaded_throughput(contenders[name], settings, progress)
            for name in ("eventlog", "floor")
        }
        figures["throughput_turns_per_s"]["eventlog_async"] = _async_throughput(
            targets["eventlog"], settings, progress
        )
        return figures
    finally:
        for contender in measured.values():
            contender.close()
        gc.unfreeze()


def sqlite_storage(directory: Path) -> Callable[[str], int]:
    """Bytes of a contender's SQLite file after a WAL checkpoint."""
    import sqlite3

    def size(name: str) -> int:
        path = directory / f"{name}.db"
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return path.stat().st_size

    return size
