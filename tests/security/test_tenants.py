"""Tenants on one PostgreSQL database, connected as the app role (DESIGN.md 7, issue #18).

Two tenants hold 50 sessions each with the same session and entry ids and
different payloads (each payload names its tenant), so any read that crossed
over would show it. Row-level security is checked on its own too: a query with
its tenant filter removed still sees only the tenant set for the transaction.
Every check also runs where it must fail (the other tenant's view, the
superuser, a schema with the policy disabled), so a check that could never fail
would show.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import app_roles
import pgserver
import psycopg
import pytest
from psycopg import sql

import eventlog
from eventlog import (
    AccessDeniedError,
    CorruptionError,
    Entry,
    SessionData,
    SessionDelta,
    SessionNotFoundError,
    StatementCancelledError,
    Store,
)
from eventlog._postgres import statements
from eventlog._postgres.errors import translated
from eventlog._sql import catalogue
from eventlog.postgres import PostgresStore
from eventlog.retention import delete_idle_sessions
from eventlog.stats import store_stats

from .conftest import AppSchema

pytestmark = pytest.mark.postgres

TENANTS = ("A", "B")
SESSIONS = [f"s{n:02}" for n in range(50)]
ENTRY_IDS = ("e0", "e1", "e2")
TABLES = ("sessions", "entries", "session_versions")
ALTERNATIONS = 1000


def _entry(tenant: str, session_id: str, entry_id: str, parent_id: str | None) -> Entry:
    return Entry(
        id=entry_id,
        parent_id=parent_id,
        payload={"tenant": tenant, "session": session_id, "entry": entry_id},
    )


def populate(
    app_schema: AppSchema, sessions: list[str] = SESSIONS, tenants: tuple[str, ...] = TENANTS
) -> None:
    """The tenants' sessions, same ids: 3 entries a session, then the last one tombstoned."""
    for tenant in tenants:
        with eventlog.connect(app_schema.url, tenant=tenant) as store:
            for sid in sessions:
                entries = [
                    _entry(tenant, sid, entry_id, ENTRY_IDS[index - 1] if index else None)
                    for index, entry_id in enumerate(ENTRY_IDS)
                ]
                store.save_delta(sid, SessionDelta(new_entries=entries, metadata={"t": tenant}))
                store.save_delta(
                    sid, SessionDelta(new_entries=[], removed_entry_ids=["e2"], leaf_id="e1")
                )


@pytest.fixture(scope="module")
def seeded(app_schema: AppSchema) -> AppSchema:
    """The module's schema populated once, and a copy of its rows (`seed_<table>`)."""
    pgserver.truncate(app_schema.schema)
    populate(app_schema)
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        for table in TABLES:
            conn.execute(
                sql.SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                    sql.Identifier(app_schema.schema, f"seed_{table}"),
                    sql.Identifier(app_schema.schema, table),
                )
            )
    return app_schema


@pytest.fixture
def populated(seeded: AppSchema) -> AppSchema:
    """The populated rows, restored from the copy (as the superuser) before each test."""
    pgserver.truncate(seeded.schema)
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        for table in TABLES:
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT * FROM {}").format(
                    sql.Identifier(seeded.schema, table),
                    sql.Identifier(seeded.schema, f"seed_{table}"),
                )
            )
    return seeded


def _tenants_of(entries: list[Entry]) -> set[str]:
    return {str(entry.payload["tenant"]) for entry in entries}  # type: ignore[index]


def sessions_showing_others(store: Store, tenant: str) -> Counter[str]:
    """Per read, how many of the 50 sessions showed anything not `tenant`'s (or not its own)."""
    foreign: Counter[str] = Counter()
    for sid in SESSIONS:
        data = store.load(sid)
        first = store.load(sid, at_version=1)
        assert data is not None and first is not None
        foreign["load"] += _tenants_of(data.entries) != {tenant} or data.metadata != {"t": tenant}
        foreign["load(at_version)"] += _tenants_of(first.entries) != {tenant}
        foreign["path"] += _tenants_of(store.path(sid)) != {tenant}
        changed = [entry for change in store.changes(sid).items for entry in change.appended]
        foreign["changes"] += _tenants_of(changed) != {tenant}
        entry = store.entry(sid, "e0")
        foreign["entry"] += entry is None or _tenants_of([entry]) != {tenant}
        foreign["scan"] += _tenants_of(store.scan(sid, id_prefix="e")) != {tenant}
        info = store.info(sid)
        foreign["info"] += info is None or (info.entry_count, info.removed_count) != (2, 1)
    return foreign


def test_each_tenant_sees_only_its_own_sessions(populated: AppSchema) -> None:
    for tenant in TENANTS:
        with eventlog.connect(populated.url, tenant=tenant) as store:
            foreign = sessions_showing_others(store, tenant)
            assert sum(foreign.values()) == 0, foreign  # 0 of 50, for every read
            listed = []
            cursor = None
            while True:
                page = store.list_sessions(limit=7, cursor=cursor)
                listed += [info.session_id for info in page.items]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert listed == SESSIONS  # 50, not 100
            stats = store_stats(store)
            assert (stats.sessions, stats.entries, stats.tombstones) == (50, 100, 50)


def test_broken_variant_the_check_sees_another_tenants_data(populated: AppSchema) -> None:
    # Tenant B's store judged as if it should show A's: every session counts as
    # foreign, so the check above can fail.
    with eventlog.connect(populated.url, tenant="B") as store:
        foreign = sessions_showing_others(store, "A")
    assert foreign["load"] == foreign["path"] == foreign["changes"] == len(SESSIONS)


def dump(conn: psycopg.Connection[Any], schema: str, tenant: str) -> dict[str, list[Any]]:
    """Every row of `tenant` in every table, as the owner reads them (all columns, bytes)."""
    rows: dict[str, list[Any]] = {}
    for table in TABLES:
        query = sql.SQL("SELECT * FROM {} WHERE tenant = %s ORDER BY 1, 2, 3").format(
            sql.Identifier(schema, table)
        )
        rows[table] = conn.execute(query, (tenant,)).fetchall()
    return rows


B_ONLY = [f"b-only-{n}" for n in range(5)]


def _calls_given_bs_ids(store: Store) -> Counter[str]:
    """Every public call of A's store, given B's session ids; what each returned."""
    seen: Counter[str] = Counter()
    for sid in B_ONLY:
        seen["load None"] += store.load(sid) is None
        seen["info None"] += store.info(sid) is None
        seen["entry None"] += store.entry(sid, "e0") is None
        seen["scan empty"] += store.scan(sid, id_prefix="e") == []
        seen["changes empty"] += store.changes(sid).items == []
        for call, args in (
            (store.path, (sid,)),
            (store.purge, (sid,)),
            (store.fork, (sid, f"{sid}-fork")),
        ):
            try:
                call(*args)
            except SessionNotFoundError:
                seen["not found"] += 1
        try:
            store.path(sid, limit=1)
        except SessionNotFoundError:
            seen["not found"] += 1
        seen["delete False"] += store.delete(sid) is False
    seen["listed"] += len(store.list_sessions(prefix="b-only").items)
    seen["stats sessions"] += store_stats(store, prefix="b-only").sessions
    # Writes given B's ids land in A's own namespace: no conflict with B's ids,
    # versions or contents.
    first, second, third, fourth, _ = B_ONLY
    store.save_delta(first, SessionDelta(new_entries=[Entry(id="e0", payload={"tenant": "A"})]))
    store.save_delta(
        second,
        SessionDelta(new_entries=[Entry(id="e1", payload={"tenant": "A"})]),
        expected_version=0,  # B's session of that id is at version 2: not seen
    )
    store.save(third, SessionData(entries=[Entry(id="e2", payload={"tenant": "A"})]))
    store.fork("s00", fourth)  # B has `fourth`: no SessionExistsError
    # On the shared ids too: A's writes touch only A's sessions.
    store.save_delta("s01", SessionDelta(new_entries=[], removed_entry_ids=["e1"], leaf_id="e0"))
    store.purge("s02")
    store.delete("s03")
    seen["written"] += sum(store.info(sid) is not None for sid in B_ONLY[:4])
    far = datetime.now(UTC) + timedelta(days=1)
    seen["retention deleted"] += delete_idle_sessions(store, timedelta(seconds=1), now=far)
    return seen


def test_a_store_for_a_given_bs_ids_never_reaches_bs_data(
    populated: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    populate(populated, B_ONLY, ("B",))
    before = dump(as_owner, populated.schema, "B")
    with eventlog.connect(populated.url, tenant="A") as store:
        seen = _calls_given_bs_ids(store)
    n = len(B_ONLY)
    assert dict(seen) == {
        "load None": n,
        "info None": n,
        "entry None": n,
        "scan empty": n,
        "changes empty": n,
        "not found": 4 * n,
        "delete False": n,
        "listed": 0,
        "stats sessions": 0,
        "written": 4,
        # A's 50 sessions less the one it deleted, and the 4 it wrote: all A's.
        "retention deleted": 49 + 4,
    }
    after = dump(as_owner, populated.schema, "B")
    assert after == before  # byte for byte: every column of every B row
    assert len(after["sessions"]) == 50 + n and len(after["entries"]) == 3 * (50 + n)
    assert dump(as_owner, populated.schema, "A")["sessions"] == []


def test_broken_variant_the_dump_sees_one_changed_byte(
    populated: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    before = dump(as_owner, populated.schema, "B")
    as_owner.execute(
        sql.SQL(
            "UPDATE {} SET payload = overlay(payload placing '\\x20'::bytea from 2) "
            "WHERE tenant = 'B' AND session_id = 's07' AND entry_id = 'e1'"
        ).format(sql.Identifier(populated.schema, "entries"))
    )
    assert dump(as_owner, populated.schema, "B") != before


# -- one pooled connection, two tenants ---------------------------------------


# A lock wait ends in an error inside the transaction, the connection intact.
LOCK_TIMEOUT_OPTION = "%20-clock_timeout%3D50"


@pytest.fixture
def shared_pool(populated: AppSchema) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    """Stores for A and B on ONE pool of one connection: B's store borrows A's pool.

    A store serves one tenant and has a pool of its own; sharing one here puts
    both tenants' transactions on one physical connection, in turns, which is
    what a leak through a pooled connection would need.
    """
    url = populated.url + LOCK_TIMEOUT_OPTION
    store_a = PostgresStore.open(url, tenant="A", min_size=1, max_size=1)
    store_b = PostgresStore.open(url, tenant="B", min_size=1, max_size=1)
    own_pool = store_b._pool
    own_pool.close()
    store_b._pool = store_a._pool
    try:
        yield store_a, store_b
    finally:
        store_b._pool = own_pool
        store_b.close()
        store_a.close()


def _backend_pid(store: PostgresStore) -> int:
    with store._pool.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _raw_borrower_view(store: PostgresStore) -> tuple[int, int, int, Any]:
    """A borrower that forgot to set a tenant: what `SELECT count(*)` reads per table."""
    with store._pool.connection() as conn:
        counts = [
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()
            for t in TABLES
        ]
        setting = conn.execute("SELECT current_setting('eventlog.tenant', true)").fetchone()
    values = [int(row[0]) for row in counts if row is not None]
    assert setting is not None
    return values[0], values[1], values[2], setting[0]


def test_one_pooled_connection_alternating_tenants_never_leaks(
    shared_pool: tuple[PostgresStore, PostgresStore],
) -> None:
    store_a, store_b = shared_pool
    pid = _backend_pid(store_a)
    leaks = 0
    for turn in range(ALTERNATIONS):
        tenant, store = ("A", store_a) if turn % 2 == 0 else ("B", store_b)
        sid = SESSIONS[turn // 2 % len(SESSIONS)]
        step = turn // 2 % 5
        if step == 0:
            data = store.load(sid)
            leaks += data is None or _tenants_of(data.entries) != {tenant}
        elif step == 1:
            new = Entry(id=f"t{turn}", parent_id="e1", payload={"tenant": tenant})
            result = store.save_delta(sid, SessionDelta(new_entries=[new]))
            leaks += result.appended != (f"t{turn}",)
        elif step == 2:
            leaks += _tenants_of(store.path(sid)) != {tenant}
        elif step == 3:
            page = store.list_sessions(limit=100)
            leaks += [info.session_id for info in page.items] != SESSIONS
        else:
            changed = [e for change in store.changes(sid).items for e in change.appended]
            leaks += _tenants_of(changed) != {tenant}
    assert leaks == 0
    # One physical connection served all 1,000 turns: the test shared what it meant to.
    assert _backend_pid(store_a) == pid
    # And it goes back to the pool with no tenant: a raw read sees no row at all.
    sessions, entries, versions, setting = _raw_borrower_view(store_a)
    assert (sessions, entries, versions) == (0, 0, 0)
    assert setting in ("", None)


def _assert_next_borrower_sees_nothing(store_a: PostgresStore, store_b: PostgresStore) -> None:
    sessions, entries, versions, setting = _raw_borrower_view(store_a)
    assert (sessions, entries, versions) == (0, 0, 0)
    assert setting in ("", None)
    data = store_b.load("s05")
    assert data is not None and _tenants_of(data.entries) == {"B"}


def test_after_an_error_inside_a_transaction_the_next_borrower_has_no_tenant(
    shared_pool: tuple[PostgresStore, PostgresStore],
    populated: AppSchema,
    as_owner: psycopg.Connection[Any],
) -> None:
    store_a, store_b = shared_pool
    pid = _backend_pid(store_a)
    # 1. A lock wait that times out inside A's delete transaction (its tenant
    # set): the store rolls back and the same connection goes back to the pool.
    with psycopg.connect(populated.owner_url) as locker:
        locker.execute(
            "SELECT 1 FROM sessions WHERE tenant = 'A' AND session_id = 's05' FOR UPDATE"
        )
        with pytest.raises(StatementCancelledError) as caught:
            store_a.delete("s05")
        assert caught.value.sqlstate == "55P03"
        locker.rollback()
    assert _backend_pid(store_a) == pid  # the very connection that failed
    _assert_next_borrower_sees_nothing(store_a, store_b)
    # 2. A server error inside the write's statement: a row put behind the store's
    # back where A's next append goes trips the primary key.
    store_a.save_delta("s05", SessionDelta(new_entries=[Entry(id="x", payload={})]))
    as_owner.execute(
        sql.SQL(
            "INSERT INTO {t} SELECT (jsonb_populate_record(e, jsonb_build_object("
            "'seq', (SELECT next_seq FROM {s} WHERE tenant = 'A' AND session_id = 's05'), "
            "'entry_id', 'planted'))).* FROM {t} e "
            "WHERE tenant = 'A' AND session_id = 's05' AND entry_id = 'x'"
        ).format(
            t=sql.Identifier(populated.schema, "entries"),
            s=sql.Identifier(populated.schema, "sessions"),
        )
    )
    for _ in range(3):  # the optimistic write, then the locking one
        with pytest.raises(CorruptionError):
            store_a.save_delta("s05", SessionDelta(new_entries=[Entry(id="y", payload={})]))
        _assert_next_borrower_sees_nothing(store_a, store_b)


def test_broken_variant_a_session_wide_tenant_is_seen_by_the_next_borrower(
    populated: AppSchema,
) -> None:
    # A connection that set the tenant for the session (is_local false), as a
    # careless store would: the raw read above then sees that tenant's rows.
    with psycopg.connect(populated.url, autocommit=True) as conn:
        conn.execute("SELECT set_config('eventlog.tenant', 't:A', false)")
        row = conn.execute("SELECT count(*) FROM entries").fetchone()
    assert row == (150,)


# -- row-level security, not the queries --------------------------------------

# A catalogue statement with its tenant filter taken out: it asks for one
# session id and, by its text, would return that session of every tenant.
UNFILTERED_STATE_SQL = statements.STATE_SQL.replace("tenant = %s AND ", "")
UNFILTERED_LIST_SQL = f"SELECT {catalogue.STATE_COLUMNS} FROM sessions ORDER BY session_id"


def _unfiltered_reads(conn: psycopg.Connection[Any], tenant: str | None) -> tuple[int, int]:
    """Rows the broken queries return, with `tenant` set as the store sets it."""
    with conn.transaction(force_rollback=True):
        if tenant is not None:
            conn.execute(statements.SET_TENANT_SQL, (tenant,))
        one = conn.execute(UNFILTERED_STATE_SQL, ("s00",)).fetchall()  # type: ignore[arg-type]
        every = conn.execute(UNFILTERED_LIST_SQL).fetchall()  # type: ignore[arg-type]
    return len(one), len(every)


def test_a_query_without_its_tenant_filter_returns_no_foreign_row(
    populated: AppSchema, as_role: psycopg.Connection[Any]
) -> None:
    assert UNFILTERED_STATE_SQL != statements.STATE_SQL  # the filter really is gone
    assert "tenant" not in UNFILTERED_STATE_SQL.split("WHERE")[1]
    assert _unfiltered_reads(as_role, "A") == (1, 50)  # its own s00 and 50: 0 of B's
    assert _unfiltered_reads(as_role, "B") == (1, 50)
    assert _unfiltered_reads(as_role, None) == (0, 0)  # no tenant set: nothing at all
    assert _unfiltered_reads(as_role, "") == (0, 0)  # the default tenant holds nothing here


def test_broken_variant_without_rls_the_same_query_sees_both_tenants(
    populated: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    # The superuser skips row-level security: the query's text alone lets B's rows in.
    assert _unfiltered_reads(as_owner, "A") == (2, 100)
    # And the app role itself, in a scratch schema whose policy the owner turned off.
    schema = pgserver.make_schema("sec_rls_off")
    role = app_roles.make_app_role(schema, "rls_off")
    try:
        scratch = AppSchema(schema, role)
        populate(scratch, sessions=SESSIONS[:10])
        for table in TABLES:
            as_owner.execute(
                sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(
                    sql.Identifier(schema, table)
                )
            )
        with psycopg.connect(scratch.url, autocommit=True) as conn:
            assert _unfiltered_reads(conn, "A") == (2, 20)
    finally:
        app_roles.drop_role(role)


def _write_as_other_tenant(conn: psycopg.Connection[Any]) -> AccessDeniedError | None:
    """With tenant A set, insert B's index row and stamp B's entries; the library's error."""
    columns = ", ".join(catalogue.SESSION_FIELDS)
    try:
        with conn.transaction(force_rollback=True), translated():
            conn.execute(statements.SET_TENANT_SQL, ("A",))
            conn.execute(
                f"INSERT INTO sessions (tenant, session_id, {columns}) "  # type: ignore[arg-type]
                f"SELECT 'B', 'planted', {columns} FROM sessions LIMIT 1"
            )
    except AccessDeniedError as error:
        return error
    return None


def test_writing_a_row_of_another_tenant_is_access_denied(
    populated: AppSchema, as_role: psycopg.Connection[Any]
) -> None:
    # The policy's WITH CHECK refuses a row of another tenant: SQLSTATE 42501 too.
    error = _write_as_other_tenant(as_role)
    assert isinstance(error, AccessDeniedError) and error.code == "42501"
    # An UPDATE or DELETE of B's rows with A set finds none to change (USING).
    with as_role.transaction(force_rollback=True):
        as_role.execute(statements.SET_TENANT_SQL, ("A",))
        stamped = as_role.execute(
            "UPDATE entries SET removed_in_version = 99 WHERE tenant = 'B'"
        ).rowcount
        deleted = as_role.execute("DELETE FROM entries WHERE tenant = 'B'").rowcount
    assert (stamped, deleted) == (0, 0)


def test_broken_variant_the_superuser_writes_another_tenants_row(
    populated: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    assert _write_as_other_tenant(as_owner) is None
