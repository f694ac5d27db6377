"""The schema as the catalog sees it: every key and index is (tenant, session_id, ...).

The tenant leads every key (DESIGN.md section 7) and session_id follows it:
that is what lets the tables be hash-partitioned or distributed (Citus) by
session_id without changing a query (DESIGN.md section 4). Row-level security
is on, and forced, on every table.

Each test migrates a schema of its own. In Citus mode (tests/pgserver.py) it
then distributes it, and reads the coordinator's catalog, where Citus keeps
the tables' definitions (keys, indexes, policies) for its shards; the
hash-partitioned layout is plain PostgreSQL's and is not distributed here.
"""

from __future__ import annotations

import itertools
from typing import Any

import pgserver
import psycopg
import pytest

from eventlog import postgres
from eventlog._sql import migrations as schema_files

OUR_TABLES = set(schema_files.OUR_TABLES)
# The first two columns of every key and index.
_KEY_START = ("tenant", "session_id")

_INDEXES = """
SELECT coalesce(parent.relname, c.relname), i.relname, a.attname,
       ix.indisunique, ix.indisprimary, pg_get_expr(ix.indpred, ix.indrelid), b.attname
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class c ON c.oid = ix.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_inherits inh ON inh.inhrelid = c.oid
LEFT JOIN pg_class parent ON parent.oid = inh.inhparent
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ix.indkey[0]
LEFT JOIN pg_attribute b ON b.attrelid = c.oid AND b.attnum = ix.indkey[1]
WHERE n.nspname = %s AND c.relname <> 'eventlog_schema_version'
"""

_KEYS = """
SELECT c.relname, con.conname, con.contype, a.attname, b.attname
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = con.conkey[1]
LEFT JOIN pg_attribute b ON b.attrelid = c.oid AND b.attnum = con.conkey[2]
WHERE n.nspname = %s AND con.contype IN ('p', 'u', 'x')
  AND c.relname <> 'eventlog_schema_version'
"""

_PARTITIONED = """
SELECT c.relname, p.partstrat, a.attname,
       (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid)
FROM pg_partitioned_table p
JOIN pg_class c ON c.oid = p.partrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
WHERE n.nspname = %s
"""


_schema_numbers = itertools.count()


@pytest.fixture
def schema(server_dsn: str) -> str:
    """An empty schema (also in Citus mode): each test migrates it itself."""
    return pgserver.make_schema(f"catalog{next(_schema_numbers)}", empty=True)


def _migrate(url: str, schema: str, partitions: int | None = None) -> list[int]:
    """Migrate the test's schema; in Citus mode also distribute it (not a partitioned one)."""
    if partitions is not None and pgserver.CITUS_DSN:
        pytest.skip("hash partitions are plain PostgreSQL's layout; Citus distributes instead")
    applied = postgres.migrate(url, partitions=partitions)
    pgserver.distribute(schema)
    return applied


def _rows(admin: psycopg.Connection[Any], query: str, schema: str) -> list[tuple[Any, ...]]:
    return admin.execute(query, (schema,)).fetchall()


@pytest.mark.parametrize("partitions", [None, 4], ids=["plain", "partitioned"])
def test_every_key_and_index_is_tenant_then_session_id(
    url: str, schema: str, admin: psycopg.Connection[Any], partitions: int | None
) -> None:
    assert _migrate(url, schema, partitions) == [
        m.version for m in schema_files.migrations("postgres")
    ]
    indexes = _rows(admin, _INDEXES, schema)
    keys = _rows(admin, _KEYS, schema)

    assert {row[0] for row in indexes} == OUR_TABLES
    assert {row[0] for row in keys if partitions is None} <= OUR_TABLES
    offenders = [(*row[:3], row[6]) for row in indexes if (row[2], row[6]) != _KEY_START]
    offenders += [row[:2] + row[3:] for row in keys if row[3:] != _KEY_START]
    assert offenders == []
    assert len(keys) >= len(OUR_TABLES)
    # Each table has its primary key (on partitions too: one per partition).
    primaries = {row[0] for row in indexes if row[4]}
    assert primaries == OUR_TABLES


@pytest.mark.parametrize("partitions", [None, 4], ids=["plain", "partitioned"])
def test_the_indexes_the_queries_rely_on(
    url: str, schema: str, admin: psycopg.Connection[Any], partitions: int | None
) -> None:
    _migrate(url, schema, partitions)
    defs = {
        row[0]: row[1]
        for row in admin.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
            "AND tablename = 'entries'",
            (schema,),
        )
    }
    live_id = defs["entries_live_entry_id"]
    assert "UNIQUE" in live_id
    assert "(tenant, session_id, entry_id)" in live_id
    assert "WHERE (removed_in_version IS NULL)" in live_id
    # load reads live rows in log order through a partial index on live rows only.
    live_order = defs["entries_live_pos"]
    assert "(tenant, session_id, pos)" in live_order
    assert "WHERE ((removed_in_version IS NULL) AND (pos >= 0))" in live_order
    # save_delta finds replaced and tombstoned rows of an id, newest first.
    removed = defs["entries_removed_entry_id"]
    assert "(tenant, session_id, entry_id, seq)" in removed
    assert "WHERE (removed_in_version IS NOT NULL)" in removed
    # changes finds what a version removed; only a tombstone or supersede writes it.
    removed_in = defs["entries_removed_version"]
    assert "(tenant, session_id, removed_in_version)" in removed_in
    assert "WHERE (removed_in_version > 0)" in removed_in
    # An append writes the primary key and these two: no full index on the id.
    assert set(defs) == {
        "entries_pkey",
        "entries_live_entry_id",
        "entries_live_pos",
        "entries_removed_entry_id",
        "entries_removed_version",
    }


def test_ids_sort_by_code_point_and_blobs_are_bytea(
    url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    _migrate(url, schema)
    columns = admin.execute(
        "SELECT table_name, column_name, data_type, collation_name "
        "FROM information_schema.columns WHERE table_schema = %s",
        (schema,),
    ).fetchall()
    types = {(table, column): (kind, collation) for table, column, kind, collation in columns}
    for table in OUR_TABLES:
        assert types[(table, "session_id")] == ("text", "C")
        assert types[(table, "tenant")] == ("text", "C")
    for column in ("entry_id", "parent_id"):
        assert types[("entries", column)] == ("text", "C")
    for key in (("entries", "payload"), ("entries", "digest"), ("sessions", "metadata")):
        assert types[key][0] == "bytea"
    assert types[("sessions", "updated_at")][0] == "timestamp with time zone"
    assert not [key for key, (kind, _) in types.items() if kind in ("json", "jsonb")]


def test_partitioned_schema_hashes_every_table_by_session_id(
    url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    _migrate(url, schema, partitions=4)
    found = {row[0]: row[1:] for row in _rows(admin, _PARTITIONED, schema)}
    assert found == {table: ("h", "session_id", 4) for table in OUR_TABLES}


_SECURITY = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relispartition = false
"""


@pytest.mark.parametrize("partitions", [None, 4], ids=["plain", "partitioned"])
def test_row_level_security_is_forced_on_every_table_but_the_version_table(
    url: str, schema: str, admin: psycopg.Connection[Any], partitions: int | None
) -> None:
    _migrate(url, schema, partitions)
    found = {row[0]: row[1:] for row in _rows(admin, _SECURITY, schema)}
    assert found == {
        **{table: (True, True, 1) for table in OUR_TABLES},
        schema_files.VERSION_TABLE: (False, False, 0),
    }
    (policy,) = admin.execute(
        "SELECT pg_get_expr(polqual, polrelid) = pg_get_expr(polwithcheck, polrelid), "
        "pg_get_expr(polqual, polrelid) FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = 'sessions'",
        (schema,),
    ).fetchall()
    assert policy[0] is True
    assert "current_setting('eventlog.tenant'::text, true)" in policy[1]
    assert "'t:'::text || tenant" in policy[1]
