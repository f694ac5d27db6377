"""Cost as the database grows (issue #21): a big database, a long session, many tasks.

``python -m benchmarks.scale --postgres postgresql://postgres@127.0.0.1:5432/test``
(``--quick`` for a run of seconds at small sizes; without ``--postgres`` SQLite only).

- Database size: per-turn ``save_delta`` (p50, p99) and a 1,000-entry ``load`` on a
  database already holding 2,000,000 entries in 20,000 sessions, against the same
  on one holding 20,000 entries in 200 sessions; the first ``list_sessions`` page
  and a deep one (19,000 sessions in; 100 in the small one, so that both pages
  are whole). The big database is built once: one session written through
  eventlog, then copied server-side (``INSERT ... SELECT`` over a series of
  numbers) into the others, so every row is a row eventlog wrote. The build
  time is reported.
- A long session: ``load`` and ``path`` of 50,000 entries against 5,000, per entry.
- Many tasks (PostgreSQL): 256 asyncio tasks on one ``AsyncStore`` (pool of 16),
  each writing its own session, against the raw floor's 16 threads; the tasks'
  p99 latency against their p50.

Small and big take turns in each round, so a drift of the machine falls on both.

``--concurrency-only`` (PostgreSQL) measures only the writers, in alternating
rounds, each on a new schema: the raw floor's 16 threads, one sync store's 16
threads with and without NOTIFY (``notify=False``), and the 256 tasks with and
without NOTIFY, and the 256 tasks on the loop runner (``async_runner="loop"``: the
asyncio driver on one loop thread, the default before issue #21).
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import click

import eventlog
from eventlog import Entry, SessionDelta
from eventlog._sql.migrations import OUR_TABLES

from .contenders import EventlogContender, FloorContender, Target
from .harness import Progress, Settings, threaded_throughput
from .workload import TurnSource, history

__all__ = ["TARGETS", "Sizes", "measure_backend", "report"]

# (figure, target, whether a ratio below the target is the good side)
TARGETS: dict[str, tuple[float, bool]] = {
    "save_delta p50 big / small": (1.2, True),
    "save_delta p99 big / small": (1.2, True),
    "load of 1,000 entries big / small": (1.2, True),
    "first list page big / small": (2.0, True),
    "deep list page big / small": (2.0, True),
    "load per entry at 50,000 / at 5,000": (1.2, True),
    "path per entry at 50,000 / at 5,000": (1.2, True),
    "256 tasks' throughput / floor's 16 threads": (0.8, False),
    "256 tasks' p99 / p50 latency": (10.0, True),
}


@dataclass(frozen=True)
class Sizes:
    """How big a run is."""

    big_sessions: int = 20_000
    small_sessions: int = 200
    entries_per_session: int = 100
    load_entries: int = 1000
    turns: int = 200
    loads: int = 15
    lists: int = 30
    long_entries: int = 50_000
    long_base: int = 5000
    tasks: int = 256
    pool: int = 16
    task_turns: int = 20
    floor_threads: int = 16

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            big_sessions=1000,
            small_sessions=20,
            entries_per_session=20,
            load_entries=200,
            turns=20,
            loads=3,
            lists=5,
            long_entries=2000,
            long_base=200,
            tasks=16,
            pool=4,
            task_turns=4,
            floor_threads=4,
        )


_ROUNDS = 5


@contextmanager
def _quiet_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _timed(call: Callable[[], Any]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _small_entries(count: int) -> list[Entry]:
    """One bulk session's entries: a chain of ~200-byte messages."""
    entries, parent = [], None
    for n in range(count):
        entry_id = f"b{n:05d}"
        payload = {"role": "user" if n % 2 else "assistant", "text": f"bulk message {n} " * 9}
        entries.append(Entry(entry_id, parent, "message", None, payload))
        parent = entry_id
    return entries


class _Database:
    """One store and a way to copy rows inside its database."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.url = target.eventlog_url()
        self.store = eventlog.connect(self.url)

    def copy_session(self, source: str, copies: int, prefix: str) -> None:
        """Copy every row of session `source` into `copies` sessions `prefix<n>`."""
        conn = self.target.connect_raw()
        try:
            for table in OUR_TABLES:
                columns = self._columns(conn, table)
                if self.target.backend == "sqlite":
                    series = (
                        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                        f"WHERE i < {copies}) "
                    )
                    numbers, new_id, mark = " n", f"'{prefix}' || n.i", "?"
                else:
                    series = ""
                    numbers = f" generate_series(1, {copies}) AS n(i)"
                    new_id, mark = f"'{prefix}' || n.i", "%s"
                chosen = ", ".join(new_id if c == "session_id" else f"t.{c}" for c in columns)
                conn.execute("BEGIN")
                conn.execute(
                    f"{series}INSERT INTO {table} ({', '.join(columns)}) "
                    f"SELECT {chosen} FROM {table} t,{numbers} WHERE t.session_id = {mark}",
                    (source,),
                )
                conn.execute("COMMIT")
            if self.target.backend == "postgres":
                conn.execute("ANALYZE")
            else:
                conn.execute("ANALYZE")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def _columns(self, conn: Any, table: str) -> list[str]:
        if self.target.backend == "sqlite":
            return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})").fetchall()]
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        self.store.close()


def _fill(db: _Database, sessions: int, sizes: Sizes) -> float:
    """`sessions` sessions of `entries_per_session` entries, plus the probes; seconds taken."""
    started = time.perf_counter()
    db.store.save_delta("bulk-0", SessionDelta(_small_entries(sizes.entries_per_session)))
    db.copy_session("bulk-0", sessions - 1, "bulk-")
    probe = history(TurnSource("p-"), sizes.load_entries)[: sizes.load_entries]
    db.store.save_delta("probe", SessionDelta(probe, leaf_id=probe[-1].id))
    return time.perf_counter() - started


def _deep_cursor(store: eventlog.Store, depth: int) -> str | None:
    """The cursor of the page that starts `depth` sessions into the listing."""
    cursor, seen = None, 0
    while seen < depth:
        page = store.list_sessions(limit=min(1000, depth - seen), cursor=cursor)
        seen += len(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return cursor


def _database_size(
    small: _Database, big: _Database, sizes: Sizes, say: Callable[[str], None]
) -> dict[str, Any]:
    built = {}
    for name, db, count in (
        ("small", small, sizes.small_sessions),
        ("big", big, sizes.big_sessions),
    ):
        say(f"building the {name} database: {count} sessions")
        built[name] = _fill(db, count, sizes)
    # 95% deep in the big one; in the small one as deep as leaves a whole page after it.
    depth = {"small": sizes.small_sessions // 2, "big": int(sizes.big_sessions * 0.95)}
    cursors = {
        "small": _deep_cursor(small.store, depth["small"]),
        "big": _deep_cursor(big.store, depth["big"]),
    }
    sources = {name: TurnSource(f"w-{name}-") for name in ("small", "big")}
    for name, db in (("small", small), ("big", big)):
        start = history(sources[name], 20)
        db.store.save_delta("writer", SessionDelta(start, leaf_id=start[-1].id))
    turns: dict[str, list[float]] = {"small": [], "big": []}
    loads: dict[str, list[float]] = {"small": [], "big": []}
    firsts: dict[str, list[float]] = {"small": [], "big": []}
    deeps: dict[str, list[float]] = {"small": [], "big": []}
    stream = {name: source.turns() for name, source in sources.items()}
    say("timing turns, loads and lists")
    for _ in range(_ROUNDS):
        for name, db in (("small", small), ("big", big)):
            store = db.store
            with _quiet_gc():
                for _ in range(sizes.turns // _ROUNDS):
                    turn = next(stream[name])
                    delta = SessionDelta(turn, leaf_id=turn[-1].id)
                    turns[name].append(_timed(partial(store.save_delta, "writer", delta)))
                for _ in range(max(1, sizes.loads // _ROUNDS)):
                    loads[name].append(_timed(partial(store.load, "probe")))
                for _ in range(max(1, sizes.lists // _ROUNDS)):
                    firsts[name].append(_timed(partial(store.list_sessions, limit=50)))
                    cursor = cursors[name]
                    deeps[name].append(
                        _timed(partial(store.list_sessions, limit=50, cursor=cursor))
                    )
    med = statistics.median
    figures: dict[str, Any] = {
        "build_seconds": built,
        "entries": {
            "small": sizes.small_sessions * sizes.entries_per_session,
            "big": sizes.big_sessions * sizes.entries_per_session,
        },
    }
    for name in ("small", "big"):
        figures[name] = {
            "save_delta_p50_ms": med(turns[name]) * 1000,
            "save_delta_p99_ms": _percentile(turns[name], 0.99) * 1000,
            "load_ms": med(loads[name]) * 1000,
            "first_page_ms": med(firsts[name]) * 1000,
            "deep_page_ms": med(deeps[name]) * 1000,
        }
    s, b = figures["small"], figures["big"]
    figures["ratios"] = {
        "save_delta p50 big / small": b["save_delta_p50_ms"] / s["save_delta_p50_ms"],
        "save_delta p99 big / small": b["save_delta_p99_ms"] / s["save_delta_p99_ms"],
        "load of 1,000 entries big / small": b["load_ms"] / s["load_ms"],
        "first list page big / small": b["first_page_ms"] / s["first_page_ms"],
        "deep list page big / small": b["deep_page_ms"] / s["deep_page_ms"],
    }
    return figures


def _long_session(db: _Database, sizes: Sizes, say: Callable[[str], None]) -> dict[str, Any]:
    say(f"writing sessions of {sizes.long_base} and {sizes.long_entries} entries")
    for name, count in (("base", sizes.long_base), ("long", sizes.long_entries)):
        source = TurnSource(f"{name}-")
        entries = history(source, count)[:count]
        for start in range(0, len(entries), 1000):
            batch = entries[start : start + 1000]
            db.store.save_delta(name, SessionDelta(batch, leaf_id=batch[-1].id))
    per_entry: dict[str, dict[str, float]] = {"load": {}, "path": {}}
    samples: dict[tuple[str, str], list[float]] = {}
    say("timing long loads and paths")
    for _ in range(3):
        for name, count in (("base", sizes.long_base), ("long", sizes.long_entries)):
            with _quiet_gc():
                samples.setdefault(("load", name), []).append(
                    _timed(partial(db.store.load, name)) / count
                )
                samples.setdefault(("path", name), []).append(
                    _timed(partial(db.store.path, name)) / count
                )
    for (kind, name), values in samples.items():
        per_entry[kind][name] = statistics.median(values) * 1e6
    return {
        "per_entry_us": per_entry,
        "ratios": {
            "load per entry at 50,000 / at 5,000": per_entry["load"]["long"]
            / per_entry["load"]["base"],
            "path per entry at 50,000 / at 5,000": per_entry["path"]["long"]
            / per_entry["path"]["base"],
        },
    }


def _tasks_throughput(
    url: str, sizes: Sizes, *, notify: bool = True, runner: str = "threads"
) -> tuple[float, list[float]]:
    """Turns per second of `tasks` asyncio tasks on one store, and each call's seconds.

    `runner` is the store's ``async_runner``: worker threads, or one loop thread.
    """

    async def run() -> tuple[float, list[float]]:
        store = await eventlog.connect_async(
            url, min_size=sizes.pool, max_size=sizes.pool, notify=notify, async_runner=runner
        )
        try:
            sources = [TurnSource(f"t{index}-") for index in range(sizes.tasks)]
            warm = [source.agent_turn() for source in sources]
            turns = [[s.agent_turn() for _ in range(sizes.task_turns)] for s in sources]
            latencies: list[float] = []

            async def write(index: int, turn: list[Entry]) -> None:
                await store.save_delta(f"task-{index}", SessionDelta(turn, leaf_id=turn[-1].id))

            # Untimed: every pooled connection open and its statements prepared.
            for _ in range(6):
                await asyncio.gather(*(write(i, warm[i]) for i in range(min(sizes.pool, 16))))
                warm = [source.agent_turn() for source in sources]

            async def task(index: int) -> None:
                for turn in turns[index]:
                    started = time.perf_counter()
                    await write(index, turn)
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(task(index) for index in range(sizes.tasks)))
            elapsed = time.perf_counter() - started
            return sizes.tasks * sizes.task_turns / elapsed, latencies
        finally:
            await store.close()

    return asyncio.run(run())


def _floor_throughput(target: Target, sizes: Sizes, say: Callable[[str], None]) -> float:
    """Turns per second of the raw floor's threads, each on its own connection and session."""
    settings = Settings(
        threads=sizes.floor_threads,
        thread_turns=sizes.tasks * sizes.task_turns // sizes.floor_threads,
    )
    floor = FloorContender(target)
    try:
        return threaded_throughput(floor, settings, Progress(say))
    finally:
        floor.close()


def _store_threads_throughput(
    target: Target, sizes: Sizes, say: Callable[[str], None], *, notify: bool
) -> float:
    """Turns per second of the floor's thread count on one sync store (pool as the tasks')."""
    settings = Settings(
        threads=sizes.floor_threads,
        thread_turns=sizes.tasks * sizes.task_turns // sizes.floor_threads,
    )
    store = eventlog.connect(
        target.eventlog_url(), min_size=sizes.pool, max_size=sizes.pool, notify=notify
    )
    try:
        return threaded_throughput(EventlogContender(target, store), settings, Progress(say))
    finally:
        store.close()


@contextmanager
def _fresh_schema(dsn: str) -> Iterator[Target]:
    """A target on a new empty schema, dropped after: every measurement writes new
    sessions and ids (the same turns again would be replays, not appends)."""
    import psycopg

    schema = f"bench_scale_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield Target("postgres", dsn, schema)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def concurrency(dsn: str, sizes: Sizes, rounds: int, say: Callable[[str], None]) -> str:
    """The writers alone, `rounds` alternating rounds: turns/s of each, and ratios to the floor.

    Each tasks variant also reports its calls' p99 / p50 latency (all rounds' calls).
    """

    def threads(rate: float) -> tuple[float, list[float]]:
        return rate, []

    variants: dict[str, Callable[[Target], tuple[float, list[float]]]] = {
        "floor threads": lambda target: threads(_floor_throughput(target, sizes, say)),
        "store threads, notify": lambda target: threads(
            _store_threads_throughput(target, sizes, say, notify=True)
        ),
        "store threads, notify=False": lambda target: threads(
            _store_threads_throughput(target, sizes, say, notify=False)
        ),
        "tasks, notify": lambda target: _tasks_throughput(target.eventlog_url(), sizes),
        "tasks, notify=False": lambda target: _tasks_throughput(
            target.eventlog_url(), sizes, notify=False
        ),
        "tasks, loop runner": lambda target: _tasks_throughput(
            target.eventlog_url(), sizes, runner="loop"
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    latencies: dict[str, list[float]] = {name: [] for name in variants}
    for number in range(rounds):
        say(f"round {number + 1} of {rounds}")
        for name, measure in variants.items():
            with _fresh_schema(dsn) as target:
                rate, calls = measure(target)
            rates[name].append(rate)
            latencies[name] += calls
    floor = statistics.median(rates["floor threads"])
    lines = [
        f"writers on own sessions: {sizes.floor_threads} threads or {sizes.tasks} tasks, "
        f"pool {sizes.pool}; turns/s, median of {rounds} rounds (each round)"
    ]
    for name, each in rates.items():
        median = statistics.median(each)
        rounds_text = ", ".join(f"{rate:.0f}" for rate in each)
        line = f"  {name:28} {median:7.0f}  {median / floor:5.2f}x floor  ({rounds_text})"
        if calls := latencies[name]:
            p50, p99 = statistics.median(calls), _percentile(calls, 0.99)
            line += f"  p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms: {p99 / p50:.1f}x"
        lines.append(line)
    return "\n".join(lines)


def _many_tasks(
    target: Target, floor: Target, sizes: Sizes, say: Callable[[str], None]
) -> dict[str, Any]:
    say(f"{sizes.tasks} tasks on one store against {sizes.floor_threads} floor threads")
    tasks_rate, latencies = _tasks_throughput(target.eventlog_url(), sizes)
    floor_rate = _floor_throughput(floor, sizes, say)
    p50, p99 = statistics.median(latencies), _percentile(latencies, 0.99)
    return {
        "tasks_turns_per_s": tasks_rate,
        "floor_turns_per_s": floor_rate,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "ratios": {
            "256 tasks' throughput / floor's 16 threads": tasks_rate / floor_rate,
            "256 tasks' p99 / p50 latency": p99 / p50,
        },
    }


def measure_backend(
    targets: dict[str, Target], sizes: Sizes, say: Callable[[str], None]
) -> dict[str, Any]:
    """Every scenario on one backend (`targets`: small, big, long, tasks, floor)."""
    figures: dict[str, Any] = {}
    small, big = _Database(targets["small"]), _Database(targets["big"])
    try:
        figures["database_size"] = _database_size(small, big, sizes, say)
    finally:
        small.close()
        big.close()
    long = _Database(targets["long"])
    try:
        figures["long_session"] = _long_session(long, sizes, say)
    finally:
        long.close()
    if "tasks" in targets:
        figures["many_tasks"] = _many_tasks(targets["tasks"], targets["floor"], sizes, say)
    return figures


def report(backend: str, figures: dict[str, Any], sizes: Sizes) -> str:
    """The figures as text, each ratio with its target and met / NOT met."""
    lines = [f"== {backend} =="]
    size = figures["database_size"]
    lines.append(
        f"database: small {size['entries']['small']:,} entries "
        f"(built in {size['build_seconds']['small']:.1f} s), big {size['entries']['big']:,} "
        f"entries (built in {size['build_seconds']['big']:.1f} s)"
    )
    for key in (
        "save_delta_p50_ms",
        "save_delta_p99_ms",
        "load_ms",
        "first_page_ms",
        "deep_page_ms",
    ):
        lines.append(f"  {key:20} small {size['small'][key]:9.3f}   big {size['big'][key]:9.3f}")
    long = figures["long_session"]["per_entry_us"]
    lines.append(
        f"long session, us per entry: load {long['load']['base']:.2f} at {sizes.long_base:,}, "
        f"{long['load']['long']:.2f} at {sizes.long_entries:,}; path {long['path']['base']:.2f}, "
        f"{long['path']['long']:.2f}"
    )
    ratios = dict(size["ratios"]) | figures["long_session"]["ratios"]
    if "many_tasks" in figures:
        tasks = figures["many_tasks"]
        lines.append(
            f"{sizes.tasks} tasks, pool {sizes.pool}: {tasks['tasks_turns_per_s']:.0f} turns/s "
            f"(p50 {tasks['p50_ms']:.2f} ms, p99 {tasks['p99_ms']:.2f} ms); floor "
            f"{sizes.floor_threads} threads {tasks['floor_turns_per_s']:.0f} turns/s"
        )
        ratios |= tasks["ratios"]
    lines.append("targets:")
    for name, value in ratios.items():
        target, below = TARGETS[name]
        met = value <= target if below else value >= target
        sign = "<=" if below else ">="
        lines.append(
            f"  {name}: {value:.2f}x (target {sign} {target}x) {'met' if met else 'NOT met'}"
        )
    return "\n".join(lines)


def _sqlite_targets(folder: Path) -> dict[str, Target]:
    return {name: Target("sqlite", str(folder / f"{name}.db")) for name in ("small", "big", "long")}


@contextmanager
def _postgres_targets(dsn: str) -> Iterator[dict[str, Target]]:
    import psycopg

    tag = secrets.token_hex(3)
    names = {
        name: f"bench_scale_{tag}_{name}" for name in ("small", "big", "long", "tasks", "floor")
    }
    with psycopg.connect(dsn, autocommit=True) as conn:
        for schema in names.values():
            conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield {name: Target("postgres", dsn, schema) for name, schema in names.items()}
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for schema in names.values():
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def run(postgres: str | None, sizes: Sizes, say: Callable[[str], None]) -> str:
    """Both backends (SQLite always, PostgreSQL when given); the report."""
    parts = []
    with tempfile.TemporaryDirectory() as folder:
        parts.append(
            report("sqlite", measure_backend(_sqlite_targets(Path(folder)), sizes, say), sizes)
        )
    if postgres:
        with _postgres_targets(postgres) as targets:
            parts.append(report("postgres", measure_backend(targets, sizes, say), sizes))
    return "\n\n".join(parts)


@click.command()
@click.option("--postgres", default=None, help="a PostgreSQL DSN (schemas made and dropped)")
@click.option("--quick", is_flag=True, help="small sizes: seconds, not minutes")
@click.option(
    "--concurrency-only",
    is_flag=True,
    help="only the writers (PostgreSQL): floor threads, store threads and tasks, NOTIFY on/off",
)
@click.option("--rounds", default=3, show_default=True, help="rounds of --concurrency-only")
def main(postgres: str | None, quick: bool, concurrency_only: bool, rounds: int) -> None:
    """Cost as the database grows: big database, long session, many tasks."""
    sizes = Sizes.quick() if quick else Sizes()
    started = time.perf_counter()

    def say(step: str) -> None:
        print(f"  .. {step}", file=sys.stderr, flush=True)

    if concurrency_only:
        if not postgres:
            raise click.UsageError("--concurrency-only needs --postgres")
        text = concurrency(postgres, sizes, rounds, say)
    else:
        text = run(postgres, sizes, say)
    click.echo(text)
    click.echo(f"(took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
