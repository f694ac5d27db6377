"""Scenario 7: SIGKILL a writing process 20 times; every acknowledged delta survives."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import eventlog
from eventlog import Entry, SessionDelta

from .figures import measured

pytestmark = pytest.mark.fault

WRITER = Path(__file__).with_name("sqlite_writer.py")


def _kill_while_writing(path: Path, first: int, rng: random.Random) -> list[int]:
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), str(first)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = [int(child.stdout.readline())]  # it is writing: now pick a moment
    time.sleep(rng.uniform(0.0, 0.05))
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    acknowledged.extend(int(line) for line in child.stdout.read().split())
    child.stdout.close()
    return acknowledged


def _present(path: Path) -> dict[int, int]:
    with eventlog.connect(f"sqlite:///{path}") as store:
        counts: dict[int, int] = {}
        for session_id in ("s0", "s1", "s2"):
            data = store.load(session_id)
            for entry in [] if data is None else data.entries:
                index = int(entry.id[1:].split("-")[0])
                counts[index] = counts.get(index, 0) + 1
        return counts


def test_twenty_sigkills_lose_no_acknowledged_delta(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    rng = random.Random(20)
    acknowledged: list[int] = []
    next_index = 0
    with measured("7. 20 SIGKILLs of a writing process", "sqlite") as figures:
        for _ in range(20):
            acknowledged += _kill_while_writing(path, next_index, rng)
            figures.faults += 1
            # Deltas after the last acknowledged one may or may not have landed.
            next_index = max(acknowledged) + 1000
        present = _present(path)
        missing = [index for index in acknowledged if index not in present]
        partial = [index for index, count in present.items() if count != 5]
        figures.operations = len(acknowledged)
        figures.lost = len(missing)
        figures.notes = f"{len(present)} deltas present, {len(partial)} in part"
    assert not missing, f"acknowledged but lost: {missing[:10]}"
    assert not partial, "a delta landed in part"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with eventlog.connect(f"sqlite:///{path}") as store:
        store.save_delta("s0", SessionDelta([Entry("after")], leaf_id="after"))
        data = store.load("s0")
        assert data is not None and data.leaf_id == "after"


def test_the_check_catches_a_lost_delta(tmp_path: Path) -> None:
    """Broken on purpose: delete an acknowledged delta's rows; the check must see it."""
    path = tmp_path / "killed.db"
    with measured("7. broken: an acknowledged delta deleted", "sqlite", broken_variant=True) as f:
        acknowledged = _kill_while_writing(path, 0, random.Random(1))
        with sqlite3.connect(path) as conn:
            conn.execute("DELETE FROM entries WHERE entry_id LIKE ?", (f"d{acknowledged[0]}-%",))
        present = _present(path)
        f.operations, f.faults = len(acknowledged), 1
        f.lost = sum(index not in present for index in acknowledged)
    assert [index for index in acknowledged if index not in present] == [acknowledged[0]]
