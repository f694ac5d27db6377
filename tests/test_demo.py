"""The demo session as a library call: its writes, the session before the compaction, and now."""

from __future__ import annotations

import eventlog
from eventlog.demo import run_demo


def test_run_demo_returns_the_writes_and_both_readings() -> None:
    with eventlog.connect("memory://") as store:
        run = run_demo(store, "d")
        assert run.now == store.load("d")
    assert [result.version for result in run.writes] == [1, 2, 3, 4, 5, 6]
    assert run.before_compaction.version == 4 and run.before_compaction.leaf_id == "a5"
    assert "c1" not in {entry.id for entry in run.before_compaction.entries}
    assert [entry.id for entry in run.now.entries] == ["u3", "a5", "c1", "u4", "a6"]
    assert (run.info.session_id, run.info.entry_count, run.info.version) == ("d", 5, 6)
    assert run.info.removed_count == len(run.writes[4].tombstoned) == 8
