"""`benchmarks/scale.py` produces every figure and checks every target (tiny sizes)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import eventlog
from benchmarks.contenders import Target
from benchmarks.scale import TARGETS, Sizes, measure_backend, report

TINY = Sizes(
    big_sessions=30,
    small_sessions=5,
    entries_per_session=4,
    load_entries=10,
    turns=5,
    loads=1,
    lists=1,
    long_entries=60,
    long_base=10,
    tasks=4,
    pool=2,
    task_turns=2,
    floor_threads=2,
)


def _checked(text: str) -> list[str]:
    return [line for line in text.splitlines() if "(target" in line]


def test_sqlite_run_copies_sessions_and_reports_its_targets(tmp_path: Path) -> None:
    targets = {
        name: Target("sqlite", str(tmp_path / f"{name}.db")) for name in ("small", "big", "long")
    }
    steps: list[str] = []
    figures = measure_backend(targets, TINY, steps.append)
    size = figures["database_size"]
    assert size["entries"] == {"small": 20, "big": 120}
    with eventlog.connect(targets["big"].eventlog_url()) as store:
        # The copies are sessions eventlog reads back like the one it wrote.
        assert store.load("bulk-29") == store.load("bulk-0")
        assert len(store.list_sessions(limit=100).items) == 30 + 2  # the probe and the writer
    text = report("sqlite", figures, TINY)
    assert len(_checked(text)) == 7  # no tasks on SQLite
    assert steps


@pytest.mark.postgres
def test_postgres_run_reports_every_target(server_dsn: str) -> None:
    from benchmarks.scale import _postgres_targets

    with _postgres_targets(server_dsn) as targets:
        figures = measure_backend(targets, TINY, lambda _: None)
    text = report("postgres", figures, TINY)
    assert [line.split(":")[0].strip() for line in _checked(text)] == list(TARGETS)


@pytest.mark.postgres
def test_postgres_concurrency_run_measures_every_writer_and_drops_its_schemas(
    server_dsn: str, admin: Any
) -> None:
    from benchmarks.scale import concurrency

    def schemas() -> set[str]:
        rows = admin.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'bench_scale_%%'"
        ).fetchall()
        return {row[0] for row in rows}

    before = schemas()
    text = concurrency(server_dsn, TINY, 1, lambda _: None)
    rows = [re.match(r"  (\S.*?)\s+(\d+)\s+([\d.]+)x floor", line) for line in text.splitlines()]
    found = {row.group(1): int(row.group(2)) for row in rows if row is not None}
    assert list(found) == [
        "floor threads",
        "store threads, notify",
        "store threads, notify=False",
        "tasks, notify",
        "tasks, notify=False",
        "tasks, loop runner",
    ]
    assert all(rate > 0 for rate in found.values())
    tasks_lines = [line for line in text.splitlines() if line.startswith("  tasks")]
    assert len(tasks_lines) == 3 and all(re.search(r"p99 [\d.]+ ms", t) for t in tasks_lines)
    assert schemas() - before == set()
