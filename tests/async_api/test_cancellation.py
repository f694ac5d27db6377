"""A task cancelled in the middle of a write leaves the whole delta or nothing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pgserver
import psycopg
import pytest

import eventlog
from eventlog import Entry, SessionDelta

# "postgres-loop": the PostgreSQL store on the loop runner (``async_runner="loop"``).
ASYNC_URLS = ["memory://", "sqlite", "postgres", "postgres-loop"]
APP_NAME = "eventlog-cancel-test"


def _url(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'cancel.db'}"
    if kind.startswith("postgres"):
        dsn = pgserver.dsn_or_skip()
        url = pgserver.with_search_path(dsn, pgserver.make_schema("cancel"))
        return f"{url}&application_name={APP_NAME}"
    return kind


def _connections_left_in_a_transaction() -> int:
    """Server backends of the test's store still inside a transaction."""
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
            "AND state LIKE 'idle in transaction%%'",
            (APP_NAME,),
        ).fetchone()
        assert row is not None
        return int(row[0])


def _delta(index: int) -> SessionDelta:
    entries = [
        Entry(f"d{index}-{part}", None, "message", None, {"part": part, "pad": "x" * 2000})
        for part in range(20)
    ]
    return SessionDelta(entries, leaf_id=entries[-1].id)


@pytest.mark.parametrize("kind", ASYNC_URLS)
def test_cancelled_writes_are_whole_or_absent(kind: str, tmp_path: Path) -> None:
    async def scenario() -> tuple[set[int], dict[int, int]]:
        rng = random.Random(7)
        acknowledged: set[int] = set()
        options = {"async_runner": "loop"} if kind == "postgres-loop" else {}
        async with await eventlog.connect_async(_url(kind, tmp_path), **options) as store:
            for index in range(60):
                task = asyncio.ensure_future(store.save_delta("s", _delta(index)))
                # Cancel at many points: before start, while queued, mid-write.
                for _ in range(rng.randrange(0, 4)):
                    await asyncio.sleep(0)
                if rng.random() < 0.5:
                    await asyncio.sleep(rng.random() * 0.004)
                if index % 10 == 9:
                    # Some writes run to the end, however slow the machine, so the
                    # check below is about cancellations, not about load.
                    await asyncio.wait([task])
                task.cancel()
                try:
                    await task
                    acknowledged.add(index)
                except asyncio.CancelledError:
                    pass
            if kind.startswith("postgres"):
                # Every connection went back to the pool clean (rolled back or
                # closed); a clean-up still running on a loaded machine gets 10 s.
                for _ in range(100):
                    await asyncio.sleep(0.1)
                    if _connections_left_in_a_transaction() == 0:
                        break
                assert _connections_left_in_a_transaction() == 0
            # A final write queues behind every started one, so all have ended.
            await store.save_delta("s", SessionDelta([Entry("last")], leaf_id="last"))
            data = await store.load("s")
        assert data is not None
        counts: dict[int, int] = {}
        for entry in data.entries[:-1]:
            index = int(entry.id[1:].split("-")[0])
            counts[index] = counts.get(index, 0) + 1
        return acknowledged, counts

    acknowledged, counts = asyncio.run(scenario())
    assert 0 < len(acknowledged) < 60, "the cancellations never (or always) hit"
    assert all(count == 20 for count in counts.values()), "a delta landed in part"
    assert acknowledged <= set(counts), "an acknowledged delta is missing"
