"""The LangGraph saver benchmark runs end to end at tiny sizes, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

pytest.importorskip("langgraph")

from benchmarks.langgraph_saver import _eventlog, _sqlite_saver, _sqlite_size, measure


def test_the_benchmark_measures_eventlog_and_sqlite_saver(tmp_path: Path) -> None:
    ours = tmp_path / "eventlog.db"
    figures = measure(_eventlog(f"sqlite:///{ours}"), _sqlite_size(ours), 4, 2, 1)
    assert figures.step_ms > 0 and figures.resume_ms > 0 and figures.bytes_per_step >= 0
    pytest.importorskip("langgraph.checkpoint.sqlite")
    theirs = tmp_path / "peer.db"
    peer = measure(_sqlite_saver(theirs), _sqlite_size(theirs), 4, 2, 1)
    assert peer.step_ms > 0 and peer.resume_ms > 0


@pytest.mark.postgres
def test_the_raw_step_floor_stores_the_steps_rows(tmp_path: Path) -> None:
    import pgserver

    from benchmarks.langgraph_saver import raw_step_ms

    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("lg_raw_step")
    assert raw_step_ms(pgserver.server_dsn(), schema, 3) > 0
    assert raw_step_ms(pgserver.server_dsn(), schema, 3, kept=True) > 0
    # It cleans up after itself: its tables are gone.
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchone()
    assert row == (0,)
