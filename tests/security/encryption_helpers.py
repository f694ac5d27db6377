"""What the encryption tests share: keyrings, a sentinel workload, raw SQLite rows."""

from __future__ import annotations

import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import eventlog
from eventlog import Entry, KeyProvider, Keyring, SessionDelta, Store

SESSIONS = 5
ENTRIES_PER_SESSION = 10
METADATA_PER_SESSION = 10


def keyring(*key_ids: str, active: str | None = None) -> Keyring:
    """A keyring of fresh random keys with these ids (the last is active unless named)."""
    return Keyring({key_id: os.urandom(32) for key_id in key_ids}, active=active or key_ids[-1])


def sentinels() -> list[str]:
    """100 unique marker strings: 50 go into payloads, 50 into metadata values."""
    count = SESSIONS * (ENTRIES_PER_SESSION + METADATA_PER_SESSION)
    return [f"SENTINEL{n:03d}x{secrets.token_hex(8)}" for n in range(count)]


def write_sentinels(store: Store, marks: list[str]) -> None:
    """Each session: 10 entries with a sentinel payload, then 10 metadata versions."""
    it = iter(marks)
    for s in range(SESSIONS):
        sid = f"s{s}"
        parent = None
        for e in range(ENTRIES_PER_SESSION):
            entry = Entry(f"e{e}", parent, "message", None, {"text": next(it), "n": e})
            store.save_delta(sid, SessionDelta([entry], leaf_id=entry.id))
            parent = entry.id
        for _ in range(METADATA_PER_SESSION):
            store.save_delta(sid, SessionDelta([], metadata={"title": next(it)}))


def assert_sentinels_readable(store: Store, marks: list[str]) -> None:
    """Sanity: every sentinel comes back through the store (so absence elsewhere means
    sealed, not unwritten)."""
    seen = set()
    for s in range(SESSIONS):
        data = store.load(f"s{s}")
        assert data is not None
        seen.update(entry.payload["text"] for entry in data.entries)
        for change in store.changes(f"s{s}").items:
            if isinstance(change.metadata, dict) and "title" in change.metadata:
                seen.add(change.metadata["title"])
    assert seen == set(marks)


def found_in(blob: bytes, marks: list[str]) -> list[str]:
    """The sentinels whose text, or hex of their bytes, occurs in `blob`."""
    lowered = blob.lower()
    return [
        mark for mark in marks if mark.encode() in blob or mark.encode().hex().encode() in lowered
    ]


@contextmanager
def raw_sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to a store's file, committing on exit."""
    with closing(sqlite3.connect(path)) as conn:
        yield conn
        conn.commit()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def connect_sqlite(path: Path, ring: KeyProvider | None, tenant: str | None = None) -> Store:
    return eventlog.connect(sqlite_url(path), keyring=ring, tenant=tenant)


def stored_key_id(conn: sqlite3.Connection, session_id: str, tenant: str = "") -> str | None:
    """The id of the key that wraps a session's stored data key (None: plain)."""
    row = conn.execute(
        "SELECT data_key FROM sessions WHERE tenant = ? AND session_id = ?", (tenant, session_id)
    ).fetchone()
    assert row is not None
    data_key = row[0]
    if data_key is None:
        return None
    return bytes(data_key[2 : 2 + data_key[1]]).decode()
