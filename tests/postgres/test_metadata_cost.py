"""A turn that keeps the metadata does not write it again, however large it is.

Counted in WAL bytes of the test's own schema and transactions (pg_walinspect,
so other clients of the server do not count; without it, the server's whole
WAL between two LSNs), not time. Before the index
row's UPDATE kept an unchanged metadata value, a session with 200 KB of
metadata wrote about 93 KB of WAL per two-entry turn; it is about 1.1 KB now
(counted this way), as with small metadata.
"""

from __future__ import annotations

import random
import string
from typing import Any

import psycopg

import eventlog
from benchmarks.wal_breakdown import has_walinspect, schema_wal
from eventlog import Entry, SessionDelta

TURNS = 20


def _wal_per_turn(
    admin: psycopg.Connection[Any], store: eventlog.Store, schema: str, session_id: str
) -> float:
    def lsn() -> Any:
        row = admin.execute("SELECT pg_current_wal_insert_lsn()").fetchone()
        assert row is not None
        return row[0]

    for n in range(3):  # past the first write and psycopg's statement preparation
        store.save_delta(session_id, SessionDelta([Entry(f"warm-{n}", payload={"n": n})]))
    start = lsn()
    for n in range(TURNS):
        store.save_delta(
            session_id,
            SessionDelta(
                [Entry(f"u{n}", payload={"text": "question"}), Entry(f"a{n}", f"u{n}")],
                leaf_id=f"a{n}",
            ),
        )
    end = lsn()
    if has_walinspect(admin):
        return sum(line.total for line in schema_wal(admin, schema, start, end, per=TURNS))
    row = admin.execute("SELECT pg_wal_lsn_diff(%s, %s)", (end, start)).fetchone()
    assert row is not None
    return float(row[0]) / TURNS


def test_a_turn_does_not_rewrite_large_metadata(
    url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    noise = random.Random(7)
    large = {"notes": "".join(noise.choices(string.ascii_letters, k=200_000))}  # ~150 KB toasted
    with eventlog.connect(url) as store:
        store.save_delta("small", SessionDelta([Entry("root")], metadata={"title": "t"}))
        store.save_delta("large", SessionDelta([Entry("root")], metadata=large))
        small_turn = _wal_per_turn(admin, store, schema, "small")
        large_turn = _wal_per_turn(admin, store, schema, "large")
        loaded = store.load("large")
    assert loaded is not None and loaded.metadata == large
    # Same rows, same indexes: only full-page images after a checkpoint differ.
    assert large_turn < small_turn + 8_000, (small_turn, large_turn)
