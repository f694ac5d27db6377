"""The benchmark harness runs end to end at tiny sizes, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

from benchmarks.contenders import sqlite_targets
from benchmarks.harness import Progress, Settings, run_backend, sqlite_storage
from benchmarks.report import checks, table


def test_harness_produces_every_figure_on_sqlite(tmp_path: Path) -> None:
    steps: list[str] = []
    settings = Settings(sizes=(4, 20), turns=2, loads=1, threads=2, thread_turns=2, big_load=20)
    figures = run_backend(
        sqlite_targets(tmp_path),
        settings,
        Progress(steps.append),
        storage_bytes=sqlite_storage(tmp_path),
    )
    assert set(figures["per_turn"]) == {"eventlog", "blob", "floor"}
    assert figures["per_turn"]["eventlog"]["20"]["n"] == 2
    assert figures["tombstoned_load"]["live"] == 20
    assert all(value > 0 for value in figures["storage_bytes_per_entry"].values())
    assert len(checks(figures)) == 7  # no WAL figure on SQLite
    assert "targets:" in table("sqlite", figures)
    assert len(steps) == 7 * len(settings.sizes) + 4
    assert figures["throughput_turns_per_s"]["eventlog_async"] > 0
