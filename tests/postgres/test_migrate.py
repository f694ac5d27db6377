"""Migrations on Postgres: one schema however many migrate at once, and refusals."""

from __future__ import annotations

import subprocess
import sys
import threading
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


@pytest.mark.parametrize("partitions", [None, 4], ids=["plain", "partitioned"])
def test_a_version_1_schema_upgrades_and_keeps_its_sessions(
    url: str, schema: str, admin: psycopg.Connection[Any], partitions: int | None
) -> None:
    delta = eventlog.SessionDelta(
        [eventlog.Entry("a", payload={"n": 1}), eventlog.Entry("b", "a", payload={"n": 2})]
    )
    postgres.migrate(url, partitions=partitions)
    with eventlog.connect(url) as store:
        store.save_delta("s", delta)
        store.save_delta("s", eventlog.SessionDelta(removed_entry_ids=["b"], leaf_id="a"))
    # Versions 2 and 3 changed only indexes: given version 1's back, this is what version 1 wrote.
    admin.execute(f"DROP INDEX {schema}.entries_removed_entry_id")
    admin.execute(f"DROP INDEX {schema}.entries_removed_version")
    admin.execute(f"DROP INDEX {schema}.entries_live_pos")
    admin.execute(
        f"CREATE INDEX entries_live_pos ON {schema}.entries (session_id, pos) "
        "WHERE removed_in_version IS NULL"
    )
    admin.execute(f"CREATE INDEX entries_entry_id ON {schema}.entries (session_id, entry_id, seq)")
    admin.execute(f"DELETE FROM {schema}.{schema_files.VERSION_TABLE} WHERE version > 1")

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
