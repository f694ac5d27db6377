"""What the benchmark compares: eventlog, the blob rewrite and the raw append floor.

Each contender gets its own database (a SQLite file, or a Postgres schema) so
storage sizes can be read off separately.

- blob: the recipe of Flue's Postgres/D1 guides. One row per session; every
  save upserts the whole session JSON (jsonb on Postgres, text on SQLite).
- floor: hand-written minimal SQL with no validation: insert the new rows and
  update an index row, in one transaction.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

import eventlog
from eventlog import Entry, SessionData, SessionDelta

__all__ = [
    "CONTENDERS",
    "BlobContender",
    "Contender",
    "EventlogContender",
    "FloorContender",
    "Target",
]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class Target(msgspec.Struct, frozen=True):
    """One database for one contender: a SQLite file or a Postgres DSN + schema."""

    backend: str  # "sqlite" or "postgres"
    location: str  # file path, or DSN
    schema: str | None = None

    def eventlog_url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.location}"
        sep = "&" if "?" in self.location else "?"
        return f"{self.location}{sep}options=-csearch_path%3D{self.schema}"

    def connect_raw(self) -> Any:
        if self.backend == "sqlite":
            conn = sqlite3.connect(self.location, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            return conn
        import psycopg

        return psycopg.connect(
            self.location, autocommit=True, options=f"-csearch_path={self.schema}"
        )


class Contender(ABC):
    """One way of storing sessions, driven through the same turns."""

    name: str

    def __init__(self, target: Target) -> None:
        self.target = target
        self.sessions: dict[str, list[Entry]] = {}

    @abstractmethod
    def append_turn(self, session_id: str, entries: list[Entry]) -> None:
        """Persist one turn; the session already holds what came before."""

    @abstractmethod
    def load(self, session_id: str) -> int:
        """Read and decode the whole session; returns its entry count."""

    def fill(self, session_id: str, entries: list[Entry]) -> None:
        """Write a history in large batches (setup, not measured)."""
        for start in range(0, len(entries), 500):
            self.append_turn(session_id, entries[start : start + 500])

    def thread_clone(self) -> Contender:
        """A contender on its own connection, for one writer thread."""
        return type(self)(self.target)

    @abstractmethod
    def close(self) -> None: ...


class EventlogContender(Contender):
    name = "eventlog"

    def __init__(self, target: Target, store: eventlog.Store | None = None) -> None:
        super().__init__(target)
        self.store = store or eventlog.connect(target.eventlog_url())
        self._shared = store is not None

    def append_turn(self, session_id: str, entries: list[Entry]) -> None:
        self.store.save_delta(session_id, SessionDelta(entries, leaf_id=entries[-1].id))
        self.sessions.setdefault(session_id, []).extend(entries)

    def save_snapshot(self, session_id: str, entries: list[Entry]) -> None:
        """`save` of the whole session plus one new turn."""
        whole = self.sessions.setdefault(session_id, [])
        whole.extend(entries)
        self.store.save(session_id, SessionData(list(whole), leaf_id=whole[-1].id))

    def tombstone_every_other(self, session_id: str) -> None:
        whole = self.sessions[session_id]
        removed = [entry.id for entry in whole[::2]]
        kept = whole[1::2]
        for start in range(0, len(removed), 500):
            self.store.save_delta(
                session_id,
                SessionDelta(removed_entry_ids=removed[start : start + 500], leaf_id=kept[-1].id),
            )
        self.sessions[session_id] = kept

    def load(self, session_id: str) -> int:
        data = self.store.load(session_id)
        assert data is not None
        return len(data.entries)

    def thread_clone(self) -> Contender:
        # One store is shared by threads, as an application would.
        return EventlogContender(self.target, self.store)

    def close(self) -> None:
        if not self._shared:
            self.store.close()


class BlobContender(Contender):
    name = "blob"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.conn = target.connect_raw()
        column = "text" if target.backend == "sqlite" else "jsonb"
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS blob_sessions (id text PRIMARY KEY, data {column} "
            "NOT NULL, updated_at text)"
        )
        mark = "?" if target.backend == "sqlite" else "%s"
        self._upsert = (
            f"INSERT INTO blob_sessions (id, data, updated_at) VALUES ({mark}, {mark}, {mark}) "
            "ON CONFLICT (id) DO UPDATE SET data = excluded.data, "
            "updated_at = excluded.updated_at"
        )
        self._select = f"SELECT data FROM blob_sessions WHERE id = {mark}"

    def append_turn(self, session_id: str, entries: list[Entry]) -> None:
        whole = self.sessions.setdefault(session_id, [])
        whole.extend(entries)
        blob = _encoder.encode(
            {"version": 3, "entries": whole, "leafId": whole[-1].id, "metadata": {}}
        )
        self.conn.execute(self._upsert, (session_id, blob.decode(), "2026-01-01T00:00:00Z"))

    def fill(self, session_id: str, entries: list[Entry]) -> None:
        self.append_turn(session_id, entries)

    def load(self, session_id: str) -> int:
        (data,) = self.conn.execute(self._select, (session_id,)).fetchone()
        if isinstance(data, str):
            data = _decoder.decode(data)
        return len(data["entries"])

    def close(self) -> None:
        self.conn.close()


class FloorContender(Contender):
    name = "floor"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.conn = target.connect_raw()
        blob = "BLOB" if target.backend == "sqlite" else "bytea"
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_sessions (session_id text PRIMARY KEY, "
            "leaf_id text, next_seq bigint NOT NULL)"
        )
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_entries (session_id text NOT NULL, seq bigint "
            f"NOT NULL, entry_id text NOT NULL, parent_id text, kind text NOT NULL, ts text, "
            f"payload {blob} NOT NULL, PRIMARY KEY (session_id, seq))"
        )
        m = "?" if target.backend == "sqlite" else "%s"
        self._bump = (
            f"INSERT INTO floor_sessions (session_id, leaf_id, next_seq) VALUES ({m}, {m}, {m}) "
            "ON CONFLICT (session_id) DO UPDATE SET leaf_id = excluded.leaf_id, "
            "next_seq = floor_sessions.next_seq + excluded.next_seq RETURNING next_seq"
        )
        self._insert = (
            "INSERT INTO floor_entries (session_id, seq, entry_id, parent_id, kind, ts, payload) "
            f"VALUES ({m}, {m}, {m}, {m}, {m}, {m}, {m})"
        )
        self._select = (
            "SELECT entry_id, parent_id, kind, ts, payload FROM floor_entries "
            f"WHERE session_id = {m} ORDER BY seq"
        )
        self._begin = "BEGIN IMMEDIATE" if target.backend == "sqlite" else "BEGIN"

    def append_turn(self, session_id: str, entries: list[Entry]) -> None:
        rows = [
            (e.id, e.parent_id, e.kind, e.timestamp, _encoder.encode(e.payload)) for e in entries
        ]
        self.conn.execute(self._begin)
        try:
            (end,) = self.conn.execute(
                self._bump, (session_id, entries[-1].id, len(rows))
            ).fetchone()
            start = end - len(rows)
            cursor = self.conn.cursor()
            cursor.executemany(
                self._insert, [(session_id, start + index, *row) for index, row in enumerate(rows)]
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise

    def load(self, session_id: str) -> int:
        rows = self.conn.execute(self._select, (session_id,)).fetchall()
        entries = [Entry(r[0], r[1], r[2], r[3], _decoder.decode(r[4])) for r in rows]
        return len(entries)

    def close(self) -> None:
        self.conn.close()


CONTENDERS = ("eventlog", "blob", "floor")


def sqlite_targets(directory: Path, names: Iterable[str] = CONTENDERS) -> dict[str, Target]:
    """One SQLite file per contender (and per peer named in `names`)."""
    return {name: Target("sqlite", str(directory / f"{name}.db")) for name in names}
