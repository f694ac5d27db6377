"""Migrations on Postgres: one schema however many migrate at once, and refusals.

Each test starts from an empty schema, in Citus mode too (tests/pgserver.py):
migrating is what they test, so their tables stay the coordinator's own.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pgserver
import psycopg
import pytest

import eventlog
from eventlog import SchemaVersionError, postgres
from eventlog._postgres import schema as pg_schema
from eventlog._sql import migrations as schema_files
from eventlog.errors import StatementCancelledError

_KNOWN = len(schema_files.migrations("postgres"))
_schema_numbers = itertools.count()


@pytest.fixture
def schema(server_dsn: str) -> str:
    """An empty schema (also in Citus mode, where the shared fixture's is distributed)."""
    return pgserver.make_schema(f"migrate{next(_schema_numbers)}", empty=True)


def _tables(admin: psycopg.Connection[Any], schema: str) -> set[str]:
    rows = admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
    ).fetchall()
    return {row[0] for row in rows}


def _recorded(admin: psycopg.Connection[Any], schema: str) -> list[int]:
    rows = admin.execute(
        f"SELECT version FROM {schema}.{schema_files.VERSION_TABLE} ORDER BY version"
    ).fetchall()
    return [row[0] for row in rows]


def test_threads_migrating_at_once_end_with_one_schema(
    url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    results: list[object] = []
    start = threading.Barrier(6)

    def run() -> None:
        start.wait()
        try:
            results.append(postgres.migrate(url))
        except Exception as error:  # collected, then asserted below
            results.append(error)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    applied = [result for result in results if isinstance(result, list)]
    assert len(applied) == len(results), results
    assert sorted(applied, key=len) == [[]] * 5 + [list(range(1, _KNOWN + 1))]
    assert _recorded(admin, schema) == list(range(1, _KNOWN + 1))


def test_processes_migrating_at_once_end_with_one_schema(
    url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    code = "import sys; from eventlog import postgres; print(postgres.migrate(sys.argv[1]))"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    assert sorted(outputs, key=len) == ["[]"] * 3 + [str(list(range(1, _KNOWN + 1)))]
    assert _recorded(admin, schema) == list(range(1, _KNOWN + 1))
    assert set(schema_files.OUR_TABLES) <= _tables(admin, schema)


def test_migrate_is_idempotent_and_connect_migrates(
    url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    with eventlog.connect(url) as store:
        store.save_delta("s", eventlog.SessionDelta(new_entries=[eventlog.Entry(id="a")]))
    assert postgres.migrate(url) == []
    with eventlog.connect(url, migrate=False) as store:
        loaded = store.load("s")
        assert loaded is not None
        assert [entry.id for entry in loaded.entries] == ["a"]
    assert _recorded(admin, schema) == list(range(1, _KNOWN + 1))


@pytest.mark.parametrize("migrate_on_open", [True, False])
def test_a_newer_schema_is_refused(
    url: str, schema: str, admin: psycopg.Connection[Any], migrate_on_open: bool
) -> None:
    postgres.migrate(url)
    admin.execute(
        f"INSERT INTO {schema}.{schema_files.VERSION_TABLE} (version, name) VALUES (%s, %s)",
        (_KNOWN + 1, "from_the_future"),
    )
    with pytest.raises(SchemaVersionError) as caught:
        eventlog.connect(url, migrate=migrate_on_open)
    assert "upgrade eventlog" in str(caught.value)
    with pytest.raises(SchemaVersionError):
        postgres.migrate(url)


@pytest.mark.parametrize("table", schema_files.OUR_TABLES)
def test_a_foreign_table_is_refused_and_nothing_is_created(
    url: str, schema: str, admin: psycopg.Connection[Any], table: str
) -> None:
    admin.execute(f"CREATE TABLE {schema}.{table} (id integer PRIMARY KEY, note text)")
    admin.execute(f"INSERT INTO {schema}.{table} VALUES (1, 'theirs')")
    with pytest.raises(SchemaVersionError) as caught:
        eventlog.connect(url)
    assert table in str(caught.value)
    assert schema_files.VERSION_TABLE in str(caught.value)
    with pytest.raises(SchemaVersionError):
        postgres.migrate(url, partitions=4)
    assert _tables(admin, schema) == {table}
    assert admin.execute(f"SELECT note FROM {schema}.{table}").fetchall() == [("theirs",)]


def test_a_failed_migration_leaves_nothing_behind(
    url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    # A relation named like an index of the first file makes that file fail
    # midway; the transaction takes back every statement before it.
    admin.execute(f"CREATE SEQUENCE {schema}.entries_entry_id")
    with pytest.raises(eventlog.StoreError):
        postgres.migrate(url)
    assert _tables(admin, schema) == set()
    admin.execute(f"DROP SEQUENCE {schema}.entries_entry_id")
    assert postgres.migrate(url) == list(range(1, _KNOWN + 1))


def test_partitions_must_be_a_positive_int(url: str) -> None:
    for bad in (0, -1, True, "4"):
        with pytest.raises(eventlog.InvalidConfigError):
            postgres.migrate(url, partitions=bad)  # type: ignore[arg-type]


def test_opening_without_migrating_an_empty_schema_says_to_migrate(url: str) -> None:
    with pytest.raises(eventlog.SchemaVersionError, match="migrate"):
        eventlog.connect(url, migrate=False)


def _written_at(
    server_dsn: str,
    url: str,
    schema: str,
    admin: psycopg.Connection[Any],
    *,
    version: int,
    partitions: int | None,
    write: Callable[[eventlog.Store], None],
) -> dict[str, eventlog.SessionData]:
    """`schema` at schema `version`, holding what `write` saves; returns every session loaded.

    The schema files up to `version` are applied as the migrator applies them;
    the rows are those a current store writes for the same calls (in the
    default tenant: the columns of the older schema, without `tenant`), copied
    over from a schema of their own.
    """
    current = pgserver.make_schema(f"{schema.rsplit('_', 1)[-1]}_current")
    with eventlog.connect(pgserver.with_search_path(server_dsn, current)) as store:
        write(store)
        listed = store.list_sessions(limit=1000).items
        loaded = {info.session_id: store.load(info.session_id) for info in listed}
    with psycopg.connect(url) as conn:  # one transaction, in `schema`
        conn.execute(pg_schema.VERSION_TABLE_SQL)
        for step in schema_files.migrations("postgres")[:version]:
            for statement in pg_schema.migration_statements(step.sql, partitions):
                conn.execute(statement)
            conn.execute(pg_schema.RECORD_MIGRATION_SQL, (step.version, step.name))
        for table in schema_files.OUR_TABLES:
            columns = ", ".join(
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = %s",
                    (schema, table),
                )
            )
            conn.execute(
                f"INSERT INTO {schema}.{table} ({columns}) SELECT {columns} FROM {current}.{table}"
            )
    return {sid: data for sid, data in loaded.items() if data is not None}


def _sessions_of_every_kind(store: eventlog.Store) -> None:
    """Sessions with tombstones, superseded entries, metadata, a fork and a purge."""
    first = eventlog.SessionDelta(
        [eventlog.Entry("a", payload={"n": 1}), eventlog.Entry("b", "a", payload={"n": 2})],
        leaf_id="b",
        metadata={"title": "one"},
    )
    store.save_delta("s", first)
    store.save_delta("s", eventlog.SessionDelta(removed_entry_ids=["b"], leaf_id="a"))
    store.save_delta(
        "s", eventlog.SessionDelta([eventlog.Entry("c", "a", payload={"n": 3})], leaf_id="c")
    )
    store.fork("s", "s-fork", at_entry_id="a")
    store.save_delta("purged", first)
    store.save_delta("purged", eventlog.SessionDelta(removed_entry_ids=["b"], leaf_id="a"))
    store.purge("purged")
    for n in range(5):
        store.save_delta(f"many-{n}", eventlog.SessionDelta([eventlog.Entry(f"e{n}")]))


@pytest.mark.parametrize("partitions", [None, 4], ids=["plain", "partitioned"])
def test_a_version_3_schema_upgrades_to_tenants_and_keeps_every_session(
    server_dsn: str,
    url: str,
    schema: str,
    admin: psycopg.Connection[Any],
    partitions: int | None,
) -> None:
    before = _written_at(
        server_dsn,
        url,
        schema,
        admin,
        version=3,
        partitions=partitions,
        write=_sessions_of_every_kind,
    )
    assert len(before) == 8
    with pytest.raises(SchemaVersionError):
        eventlog.connect(url, migrate=False)
    assert postgres.migrate(url) == list(range(4, _KNOWN + 1))
    with eventlog.connect(url, migrate=False) as store:
        assert {sid: store.load(sid) for sid in before} == before
        assert [info.session_id for info in store.list_sessions().items] == sorted(before)
        history = store.load("s", at_version=1)
        assert history is not None and [entry.id for entry in history.entries] == ["a", "b"]
    for table in schema_files.OUR_TABLES:
        tenants = admin.execute(f"SELECT DISTINCT tenant FROM {schema}.{table}").fetchall()
        assert tenants == [("",)]
    # Another tenant sees none of them, and may reuse their ids.
    with eventlog.connect(url, tenant="other", migrate=False) as other:
        assert other.list_sessions().items == []
        assert other.load("s") is None
        other.save_delta("s", eventlog.SessionDelta([eventlog.Entry("a")]))
    with eventlog.connect(url, migrate=False) as store:
        assert store.load("s") == before["s"]


@pytest.mark.parametrize("partitions", [None, 4], ids=["plain", "partitioned"])
def test_a_version_1_schema_upgrades_and_keeps_its_sessions(
    server_dsn: str,
    url: str,
    schema: str,
    admin: psycopg.Connection[Any],
    partitions: int | None,
) -> None:
    delta = eventlog.SessionDelta(
        [eventlog.Entry("a", payload={"n": 1}), eventlog.Entry("b", "a", payload={"n": 2})]
    )

    def write(store: eventlog.Store) -> None:
        store.save_delta("s", delta)
        store.save_delta("s", eventlog.SessionDelta(removed_entry_ids=["b"], leaf_id="a"))

    before = _written_at(
        server_dsn, url, schema, admin, version=1, partitions=partitions, write=write
    )
    with pytest.raises(SchemaVersionError):
        eventlog.connect(url, migrate=False)
    assert postgres.migrate(url) == list(range(2, _KNOWN + 1))
    defs = dict(
        admin.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s "
            "AND tablename = 'entries'",
            (schema,),
        ).fetchall()
    )
    assert "entries_entry_id" not in defs
    assert "WHERE (removed_in_version IS NOT NULL)" in defs["entries_removed_entry_id"]
    assert "(pos >= 0)" in defs["entries_live_pos"]
    assert "WHERE (removed_in_version > 0)" in defs["entries_removed_version"]
    with eventlog.connect(url, migrate=False) as store:
        assert store.load("s") == before["s"]
        # A retried old delta finds b's tombstone through the replaced-rows index.
        result = store.save_delta("s", delta)
        assert result.skipped == ("a", "b") and result.appended == ()
        loaded = store.load("s")
        assert loaded is not None and [entry.id for entry in loaded.entries] == ["a"]


def test_a_migration_waits_only_for_its_own_schema(server_dsn: str) -> None:
    # One schema's migration lock is held (as by a process migrating it): opening a
    # store on another schema does not wait for it; one on the same schema does.
    busy, other = pgserver.make_schema("lock_busy"), pgserver.make_schema("lock_other")

    def impatient(schema: str) -> str:  # a lock wait of more than 300 ms is cancelled
        options = quote(f"-csearch_path={schema} -clock_timeout=300")
        return f"{server_dsn}{'&' if '?' in server_dsn else '?'}options={options}"

    with psycopg.connect(impatient(busy), autocommit=True) as holder:
        holder.execute(pg_schema.LOCK_MIGRATION_SQL)
        with eventlog.connect(impatient(other)) as store:
            assert store.load("s") is None
        with pytest.raises(StatementCancelledError):
            eventlog.connect(impatient(busy))
        holder.execute(pg_schema.UNLOCK_MIGRATION_SQL)
    with eventlog.connect(impatient(busy)) as store:
        assert store.load("s") is None
