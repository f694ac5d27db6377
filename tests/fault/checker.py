"""The exactly-once checker: what a store holds against what it acknowledged."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import eventlog

RawRows = Callable[[str], list[tuple[int, str, bool]]]
"""(seq, entry_id, live) of every stored record of a session, in seq order."""


@dataclass
class Verdict:
    """Loss, duplication and seq gaps found in one session."""

    acknowledged: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    seq_gaps: list[int] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return not (self.lost or self.duplicated or self.seq_gaps)


def check_session(
    store: eventlog.Store, raw_rows: RawRows, session_id: str, acknowledged: Iterable[str]
) -> Verdict:
    """Every acknowledged entry is live, no entry id has two records, and the
    session's seq values run 0..n-1 without a gap (for append-only workloads)."""
    wanted = list(acknowledged)
    verdict = Verdict(acknowledged=len(wanted))
    data = store.load(session_id)
    live_ids = Counter(entry.id for entry in data.entries) if data else Counter()
    verdict.lost = sorted(set(wanted) - set(live_ids))
    rows = raw_rows(session_id)
    # The scenarios only append, so every entry id must have exactly one record.
    written = Counter(entry_id for _, entry_id, _ in rows)
    verdict.duplicated = sorted(entry_id for entry_id, count in written.items() if count > 1)
    seqs = [seq for seq, _, _ in rows]
    verdict.seq_gaps = [seq for index, seq in enumerate(seqs) if seq != index]
    return verdict


def sqlite_rows(path: Path) -> RawRows:
    """Raw records of a SQLite store file."""

    def rows(session_id: str) -> list[tuple[int, str, bool]]:
        with sqlite3.connect(path) as conn:
            return [
                (seq, entry_id, removed is None)
                for seq, entry_id, removed in conn.execute(
                    "SELECT seq, entry_id, removed_in_version FROM entries "
                    "WHERE session_id = ? ORDER BY seq",
                    (session_id,),
                )
            ]

    return rows


def postgres_rows(dsn: str, schema: str) -> RawRows:
    """Raw records of a Postgres store in `schema`, read with a connection of the test's own."""
    import psycopg

    def rows(session_id: str) -> list[tuple[int, str, bool]]:
        with psycopg.connect(dsn, autocommit=True) as conn:
            return [
                (int(seq), str(entry_id), removed is None)
                for seq, entry_id, removed in conn.execute(
                    f"SELECT seq, entry_id, removed_in_version FROM {schema}.entries "
                    "WHERE session_id = %s ORDER BY seq",
                    (session_id,),
                )
            ]

    return rows


def memory_rows(store: eventlog.Store) -> RawRows:
    """Raw records of a memory store (its reference lists)."""
    from eventlog.memory import MemoryStore

    assert isinstance(store, MemoryStore)

    def rows(session_id: str) -> list[tuple[int, str, bool]]:
        session = store._sessions.get(session_id)
        records = [] if session is None else session.records
        return [(r.seq, r.entry_id, r.live) for r in records]

    return rows
