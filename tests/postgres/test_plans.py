"""The store's statements look a session's rows up in their indexes, in every plan.

Pooled connections use generic plans (made without the parameters' values) and
keep them for prepared statements. A kept plan made while the tables were
empty must still be an index lookup of one session, or a call would read whole
tables, or a session's whole history, for the connection's life. Each
statement's generic plan is EXPLAINed, on a connection set up as the pool sets
its own, on a new empty schema and in a schema holding one 2,000-entry session
and no statistics yet (never ANALYZEd: a new database's first busy minutes).
Each is made as the tables' owner and as the app role, under row-level
security: PostgreSQL evaluates a condition it cannot prove leakproof after the
tenant policy, so such a condition can never be an index lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import app_roles
import pgserver
import psycopg
import pytest
from psycopg import sql as pgsql

import eventlog
from eventlog import Entry, SessionDelta, postgres
from eventlog._core.planning import PurgePlan, WritePlan
from eventlog._core.records import Record, SessionState, StateQuery
from eventlog._postgres import connection, statements
from eventlog._postgres.guarded import guard_sql, guarded_write
from eventlog._sql.catalogue import (
    LIVE_ENTRIES_SQL,
    branch_tail_params,
    list_states_sql,
    plan_statements,
    purge_statements,
    scan_sql,
    version_row_params,
)
from eventlog.model import SaveResult

# On Citus the coordinator plans a Citus scan and each shard's plan is its
# worker's; the plans checked here are plain PostgreSQL's pool's (generic plans
# of local tables), and the routing of each statement is test_citus_routing's.
pytestmark = pytest.mark.skipif(
    bool(pgserver.CITUS_DSN),
    reason="plain PostgreSQL's plans; on Citus the routing is test_citus_routing.py's",
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
READ = SessionState("s", 3, "a", b"{}", 4, 3, 1, 30, 0, NOW, NOW)
NEW = SessionState("s", 4, "b", b"{}", 6, 4, 2, 40, 0, NOW, NOW)
APPENDS = [
    Record(4, 1, "b", "a", "message", None, b"{}", b"d" * 16, 4, None),
    Record(5, 5, "c", "b", "message", None, b"{}", b"d" * 16, 4, None),
]
UPDATE = WritePlan(NEW, False, True, [1], APPENDS, True, SaveResult(4))
APPEND = WritePlan(NEW, False, True, [], APPENDS, False, SaveResult(4))
CREATE = WritePlan(NEW, True, True, [], APPENDS, False, SaveResult(1))
# The session of `configured` is in the default tenant.
T = ""
IDS = {"tenant": T, "sid": "s", "ids": ["a", "b"]}
PURGE = purge_statements(
    PurgePlan("s", 3, b"{}", 0), tenant=T, paramstyle="%s", length="octet_length"
)

STATEMENTS: dict[str, tuple[str, Sequence[Any] | Mapping[str, Any]]] = {
    "state": (statements.STATE_SQL, (T, "s")),
    "state for update": (statements.STATE_FOR_UPDATE_SQL, (T, "s")),
    "state and latest": (statements.STATE_AND_LATEST_SQL, IDS),
    "latest": (statements.LATEST_SQL, IDS),
    "live entries": (LIVE_ENTRIES_SQL, (T, "s")),
    "live digests": (statements.LIVE_DIGESTS_SQL, (T, "s")),
    "records at": (statements.RECORDS_AT_SQL, (T, "s", 2, 2)),
    "version row": (statements.VERSION_ROW_SQL, version_row_params(T, "s", 2)),
    "guarded update": guarded_write(UPDATE, READ, tenant=T),
    "guarded create": guarded_write(CREATE, None, tenant=T),
    "guarded append": guarded_write(APPEND, READ, tenant=T, absent=True),
    "guard": guard_sql("s", READ, T),
    "list": list_states_sql(
        T,
        StateQuery(prefix="s", updated_before=NOW, after="r", limit=10),
        paramstyle="%s",
        time=lambda t: t,
    ),
    "purge records": (PURGE[0][0], PURGE[0][1][0]),
    "live record": (statements.LIVE_RECORD_SQL, (T, "s", "h1-7")),
    "branch tail": (statements.BRANCH_TAIL_SQL, branch_tail_params(T, "s", None, 20)),
    "scan": scan_sql(T, "s", "h1-", None, 20, paramstyle="%s"),
    "scan after an id": scan_sql(T, "s", "h1-", "h1-400", 20, paramstyle="%s"),
    **{f"delete {n}": (statement, (T, "s")) for n, statement in enumerate(statements.DELETE_SQL)},
    **{
        f"locking write {n}": (statement, rows[0])
        for n, (statement, rows) in enumerate(
            plan_statements(UPDATE, tenant=T, paramstyle="%s", time=str)
        )
    },
}


# Run with a custom plan (SET LOCAL plan_cache_mode), made for each call's
# values and table sizes: no plan of theirs is kept.
CUSTOM_PLANNED = {"guarded update"}
# Statements that touch a few rows of a session: their index lookups on entries
# must name the entry ids or seqs, not scan the session's range of an index.
NARROW = {
    "latest",
    "state and latest",
    "guarded update",
    "guarded append",
    "locking write 0",
    "locking write 1",
    "live record",
    "branch tail",
}


def numbered(query: str, params: Sequence[Any] | Mapping[str, Any]) -> tuple[str, list[Any]]:
    """psycopg placeholders as $n, and the values in $n order."""
    values: list[Any] = []
    named: dict[str, int] = {}
    positional = iter(params if isinstance(params, Sequence) else ())

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            values.append(next(positional))
            return f"${len(values)}"
        assert isinstance(params, Mapping)
        if name not in named:
            values.append(params[name])
            named[name] = len(values)
        return f"${named[name]}"

    return re.sub(r"%(?:\((\w+)\))?[sb]", number, query), values


# Where the plans are made: as the tables' owner (the server's superuser, which
# skips row-level security) on plain and partitioned tables, and as the app role
# `eventlog migrate --app-role` makes, for which PostgreSQL adds the tenant policy
# to every statement: the policy must not turn an index lookup into a scan.
LAYOUTS = {"plain": None, "partitioned": 4, "plain-app-role": None, "partitioned-app-role": 4}


def _migrated(layout: str, schema: str, url: str, name: str) -> str:
    """Migrate the schema for `layout`; returns the URL the layout's plans are made as."""
    partitions = LAYOUTS[layout]
    if not layout.endswith("app-role"):
        postgres.migrate(url, partitions=partitions)
        return url
    role = app_roles.make_app_role(schema, f"plans_{name}", partitions=partitions)
    return app_roles.role_url(role, schema)


def _configured_connection(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(connection.CONFIGURE_SQL)
    # The default tenant's setting, as the store sets it in each transaction.
    conn.execute("SELECT set_config('eventlog.tenant', 't:' || %s, false)", (T,))
    return conn


def _schema_url(layout: str, name: str) -> str:
    """A new schema migrated for `layout`; returns the URL the layout's plans are made as."""
    schema = pgserver.make_schema(f"plans_{name}_{layout}")
    return _migrated(layout, schema, pgserver.with_search_path(pgserver.server_dsn(), schema), name)


# The plans are only EXPLAINed (and ANALYZE changes only statistics): one schema
# of each kind per layout serves the module.
@pytest.fixture(params=sorted(LAYOUTS), scope="module")
def empty(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection to a new, empty schema, set up as the pool's are."""
    pgserver.dsn_or_skip()
    with _configured_connection(_schema_url(request.param, "empty")) as conn:
        yield conn


@pytest.fixture(params=sorted(LAYOUTS), scope="module")
def configured(request: pytest.FixtureRequest) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection to a new schema holding one long session, set up as the pool's are."""
    pgserver.dsn_or_skip()
    connect_url = _schema_url(request.param, "long")
    with eventlog.connect(connect_url) as store:
        for batch in range(4):
            entries = [Entry(f"h{batch}-{n}", payload={"n": n}) for n in range(500)]
            store.save_delta("s", SessionDelta(entries))
    with _configured_connection(connect_url) as conn:
        yield conn


def generic_plan(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> str:
    query, values = numbered(*STATEMENTS[name])
    conn.execute(f"PREPARE probe AS {query}")
    try:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        arguments = pgsql.SQL(", ").join(pgsql.Literal(value) for value in values)
        rows = conn.execute(pgsql.SQL("EXPLAIN EXECUTE probe({})").format(arguments)).fetchall()
    finally:
        conn.execute("DEALLOCATE probe")
        conn.execute(connection.CONFIGURE_SQL)  # the pool's setting again
    return "\n".join(str(row[0]) for row in rows)


def assert_index_lookups(explained: str, *, narrow: bool) -> None:
    assert "Seq Scan" not in explained, explained
    lines = explained.splitlines()
    # Ids and seqs are looked up in an index, never filtered out of a session's rows.
    # One exception: a filter of seqs on a scan whose index condition bounds the
    # seqs to their range (stamping removals, see `guarded._STAMP_REMOVALS`).
    filters = [
        line
        for n, line in enumerate(lines)
        if ("Filter:" in line or "Hash Cond:" in line)
        and not ("(seq = ANY" in line and "(seq >= " in lines[n - 1] and "(seq <= " in lines[n - 1])
    ]
    assert not any("entry_id" in line or "seq" in line for line in filters), explained
    if narrow:
        on_entries = [
            lines[n + 1]
            for n, line in enumerate(lines[:-1])
            if " on entries" in line and "Scan" in line
        ]
        assert all("entry_id" in cond or "seq" in cond for cond in on_entries), explained


# Reads of a session's live rows: through an index of live rows only, so
# tombstones cost them nothing, whatever the statistics say.
LIVE_READS = {"live entries", "live digests"}


# entries_live_pos, or its copy on a partition (named by Postgres).
_LIVE_POS = re.compile(r"Scan using (entries_live_pos|entries_p\d+_tenant_session_id_pos_idx) on ")


def assert_live_rows_only(explained: str) -> None:
    scans = [line for line in explained.splitlines() if " on entries" in line]
    assert scans and all(_LIVE_POS.search(line) for line in scans), explained
    assert "removed_in_version IS NULL" not in explained, explained  # no filter


def custom_plan(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> str:
    query, params = STATEMENTS[name]
    conn.execute("SET plan_cache_mode = force_custom_plan")
    try:
        rows = conn.execute(f"EXPLAIN {query}", params).fetchall()
    finally:
        conn.execute(connection.CONFIGURE_SQL)  # the pool's setting again
    return "\n".join(str(row[0]) for row in rows)


@pytest.mark.parametrize("name", sorted(set(STATEMENTS) - CUSTOM_PLANNED))
def test_kept_plans_made_on_empty_tables_are_index_lookups(
    empty: psycopg.Connection[tuple[Any, ...]], name: str
) -> None:
    assert_index_lookups(generic_plan(empty, name), narrow=name in NARROW)


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_plans_on_a_long_session_look_ids_up_in_an_index(
    configured: psycopg.Connection[tuple[Any, ...]], name: str
) -> None:
    planned = custom_plan if name in CUSTOM_PLANNED else generic_plan
    assert_index_lookups(planned(configured, name), narrow=name in NARROW)


def test_the_pool_keeps_plans_and_turns_table_scans_off(
    configured: psycopg.Connection[tuple[Any, ...]],
) -> None:
    settings = {
        name: configured.execute(f"SHOW {name}").fetchone()
        for name in connection.CONNECTION_SETTINGS
    }
    assert settings == {name: (value,) for name, value in connection.CONNECTION_SETTINGS.items()}


@pytest.mark.parametrize("name", sorted(LIVE_READS))
def test_live_reads_on_empty_tables_use_an_index_of_live_rows(
    empty: psycopg.Connection[tuple[Any, ...]], name: str
) -> None:
    assert_live_rows_only(generic_plan(empty, name))


@pytest.mark.parametrize("name", sorted(LIVE_READS))
def test_live_reads_of_a_long_session_use_an_index_of_live_rows(
    configured: psycopg.Connection[tuple[Any, ...]], name: str
) -> None:
    assert_live_rows_only(generic_plan(configured, name))
    # With statistics of a session whose rows are all live, a scan of all its
    # rows with a filter would look as cheap: the plan must not change.
    configured.execute("ANALYZE")
    assert_live_rows_only(generic_plan(configured, name))
