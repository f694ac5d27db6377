"""The SQLite schema: an older database upgrades in place, the id lookup that
every save_delta makes stays on indexes that hold only the ids asked for, and
SQLite's errors are told apart by their result code."""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import (
    CorruptionError,
    Entry,
    SchemaVersionError,
    SessionDelta,
    StoreUnavailableError,
)
from eventlog._sql import migrations
from eventlog._sql.catalogue import CHANGES_ADDED_SQL, CHANGES_REMOVED_SQL, named_qmark, scan_sql
from eventlog._sqlite.driver import records_of_ids_sql
from eventlog.sqlite import SQLiteStore


def _written_at(path: Path, version: int, write: Callable[[SQLiteStore], None]) -> dict[str, Any]:
    """A file at schema `version` holding what `write` saves; returns every session loaded.

    The schema files up to `version` are applied as the migrator applies them;
    the rows are those a current store writes for the same calls (in the
    default tenant: the columns of the older schema, without `tenant`), copied
    over from a file of their own.
    """
    current = path.with_name(f"{path.stem}-current.db")
    with SQLiteStore(current) as store:
        write(store)
        listed = store.list_sessions(limit=1000).items
        loaded = {info.session_id: store.load(info.session_id) for info in listed}
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.execute(
            f"CREATE TABLE {migrations.VERSION_TABLE} (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        for step in migrations.migrations("sqlite")[:version]:
            for statement in migrations.split_statements(step.sql):
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {migrations.VERSION_TABLE} VALUES (?, ?, 0)",
                (step.version, step.name),
            )
        conn.execute("COMMIT")
        conn.execute("ATTACH ? AS current", (str(current),))
        conn.execute("BEGIN")
        for table in migrations.OUR_TABLES:
            columns = ", ".join(row[1] for row in conn.execute(f"PRAGMA main.table_info({table})"))
            conn.execute(
                f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM current.{table}"
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {sid: data for sid, data in loaded.items() if data is not None}


def _sessions_of_every_kind(store: SQLiteStore) -> None:
    """Sessions with tombstones, superseded entries, metadata, a fork and a purge."""
    first = SessionDelta(
        [Entry("a", payload={"n": 1}), Entry("b", "a", payload={"n": 2})],
        leaf_id="b",
        metadata={"title": "one"},
    )
    store.save_delta("s", first)
    store.save_delta("s", SessionDelta(removed_entry_ids=["b"], leaf_id="a"))
    store.save_delta("s", SessionDelta([Entry("c", "a", payload={"n": 3})], leaf_id="c"))
    store.fork("s", "s-fork", at_entry_id="a")
    store.save_delta("purged", first)
    store.save_delta("purged", SessionDelta(removed_entry_ids=["b"], leaf_id="a"))
    store.purge("purged")
    for n in range(5):
        store.save_delta(f"many-{n}", SessionDelta([Entry(f"e{n}")]))


def test_a_version_3_database_upgrades_to_tenants_and_keeps_every_session(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    before = _written_at(path, 3, _sessions_of_every_kind)
    assert len(before) == 8
    with pytest.raises(SchemaVersionError):
        SQLiteStore(path, migrate=False)
    with SQLiteStore(path) as store:
        assert {sid: store.load(sid) for sid in before} == before
        assert [info.session_id for info in store.list_sessions().items] == sorted(before)
        history = store.load("s", at_version=1)
        assert history is not None and [entry.id for entry in history.entries] == ["a", "b"]
    with sqlite3.connect(path) as conn:
        for table in migrations.OUR_TABLES:
            tenants = conn.execute(f"SELECT DISTINCT tenant FROM {table}").fetchall()
            assert tenants == [("",)]
            keys = [
                row[1]
                for row in sorted(conn.execute(f"PRAGMA table_info({table})"), key=lambda r: r[5])
                if row[5]
            ]
            assert keys[:2] == ["tenant", "session_id"]
        indexes = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'entries'"
        ).fetchall()
        for (index,) in indexes:
            columns = [row[2] for row in conn.execute(f"PRAGMA index_info({index})")]
            assert columns[:2] == ["tenant", "session_id"], index
    conn.close()
    # Another tenant sees none of them, and may reuse their ids.
    with SQLiteStore(path, tenant="other") as other:
        assert other.list_sessions().items == []
        assert other.load("s") is None
        other.save_delta("s", SessionDelta([Entry("a")]))
    with SQLiteStore(path) as store:
        assert store.load("s") == before["s"]


def _written_at_version_1(path: Path, delta: SessionDelta) -> None:
    """A file holding one session as schema version 1 stored it."""

    def write(store: SQLiteStore) -> None:
        store.save_delta("s", delta)
        store.save_delta("s", SessionDelta(removed_entry_ids=["b"], leaf_id="a"))

    _written_at(path, 1, write)


def test_the_id_lookup_reads_only_the_ids_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "plan.db"
    eventlog.connect(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as conn:
        plan = [
            row[3]
            for row in conn.execute(
                "EXPLAIN QUERY PLAN " + records_of_ids_sql("seq", 2),
                ("", "s", "a", "b", "", "s", "a", "b"),
            )
        ]
    searches = [step for step in plan if step.startswith(("SEARCH", "SCAN"))]
    assert searches == [
        "SEARCH entries USING INDEX entries_live_entry_id "
        "(tenant=? AND session_id=? AND entry_id=?)",
        "SEARCH entries USING INDEX entries_removed_entry_id "
        "(tenant=? AND session_id=? AND entry_id=?)",
    ]


def test_changes_reads_only_index_ranges_and_key_probes(tmp_path: Path) -> None:
    # No step of changes scans a session: the removed rows come from their
    # partial index, the added rows from a primary-key range whose bounds a
    # binary search finds by key probes.
    path = tmp_path / "plan.db"
    eventlog.connect(f"sqlite:///{path}").close()
    params = {"tenant": "", "sid": "s", "after": 1, "until": 3, "next_seq": 100}
    with sqlite3.connect(path) as conn:
        removed, added = (
            [
                row[3]
                for row in conn.execute("EXPLAIN QUERY PLAN " + named_qmark(sql), params)
                if row[3].startswith(("SEARCH", "SCAN"))
            ]
            for sql in (CHANGES_REMOVED_SQL, CHANGES_ADDED_SQL)
        )
    assert removed == [
        "SEARCH entries USING INDEX entries_removed_version "
        "(tenant=? AND session_id=? AND removed_in_version>? AND removed_in_version<?)"
    ]
    reads = [step for step in added if "CONSTANT ROW" not in step and not step.startswith("SCAN b")]
    assert reads and all(
        step.startswith("SEARCH")
        and "USING INDEX sqlite_autoindex_entries_1 (tenant=? AND session_id=? AND seq>" in step
        for step in reads
    ), added


def test_a_database_locked_past_the_busy_timeout_is_unavailable_with_sqlites_code(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    with SQLiteStore(path, busy_timeout=0) as store:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(StoreUnavailableError) as caught:
                store.save_delta("s", SessionDelta([Entry("a")]))
        finally:
            other.close()
    assert caught.value.code == "SQLITE_BUSY"
    assert "code='SQLITE_BUSY'" in repr(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).code == "SQLITE_BUSY"


def test_a_file_that_is_not_a_database_is_corruption_with_sqlites_code(tmp_path: Path) -> None:
    path = tmp_path / "not.db"
    path.write_bytes(b"this is not a database file, just text " * 100)
    with pytest.raises(CorruptionError) as caught:
        SQLiteStore(path)
    assert caught.value.code == "SQLITE_NOTADB"


def _vm_steps(conn: sqlite3.Connection, sql: str, params: list[object]) -> tuple[int, int]:
    """SQLite virtual-machine steps a statement takes (in 100s), and the rows it returns."""
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(count, 100)
    try:
        rows = conn.execute(sql, params).fetchall()
    finally:
        conn.set_progress_handler(None, 0)
    return steps, len(rows)


def test_a_scan_after_a_deep_id_reads_only_the_page(tmp_path: Path) -> None:
    # Both bounds of the page (the prefix and after_id) are lower bounds of one
    # column; SQLite seeks by one of them only. Were it the prefix, a page deep in
    # the range would step over every id before it: paging would be quadratic.
    path = tmp_path / "scan.db"
    with eventlog.connect(f"sqlite:///{path}") as store:
        ids = [f"w:{n:05d}" for n in range(3000)]
        for start in range(0, len(ids), 500):
            store.save_delta("s", SessionDelta([Entry(i) for i in ids[start : start + 500]]))
    with sqlite3.connect(path) as conn:
        shallow = _vm_steps(conn, *scan_sql("", "s", "w:", ids[10], 20, paramstyle="?"))
        deep = _vm_steps(conn, *scan_sql("", "s", "w:", ids[2900], 20, paramstyle="?"))
        below = _vm_steps(conn, *scan_sql("", "s", "w:", "a", 20, paramstyle="?"))
    conn.close()
    assert shallow[1] == deep[1] == below[1] == 20
    assert deep[0] <= 2 * shallow[0] + 5, (shallow, deep)
    assert below[0] <= 2 * shallow[0] + 5, (shallow, below)
