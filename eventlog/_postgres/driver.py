"""The sync PostgreSQL driver: psycopg 3 Connection and ConnectionPool.

GENERATED from `_postgres/driver_async.py` by `python -m eventlog._async_to_sync`:
do not edit by hand.

It only runs SQL: the statements and row mapping are in `statements.py`, every decision
in `_core`.

`save_delta` and `save` are optimistic: their reads run in autocommit mode
(save_delta's as one statement), and everything the plan writes goes as one
statement that applies only if the index row is still the one read
(`_postgres.guarded`): two round trips, no BEGIN or COMMIT. A write that loses that
race plans again; after a few lost races the operation takes the locking path
every other write uses: BEGIN, the index row locked FOR UPDATE, the reads, then
the writes together with COMMIT in one pipeline.

Every writer creates a session with the same statement (`guarded_write` of a
plan read on no session): the index row first, `ON CONFLICT DO NOTHING`, and
the rest only if that insert happened. So creators wait for each other on that
one row, in one order (no deadlock), and one that finds the row made
meanwhile writes nothing and runs its operation again, which then sees the
session: a `fork` raises `SessionExistsError`, a `save_delta` appends.
"""

from __future__ import annotations

import select
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import Connection, Cursor
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool

from .._core.codec import check_tenant
from .._core.folding import entries_from_rows
from .._core.log import logger
from .._core.operations import Operation
from .._core.options import check_flag
from .._core.planning import PurgePlan, WritePlan
from .._core.records import BranchWalk, LogSlice, Record, SessionState, StateQuery, VersionChange
from .._core.storage_requests import RowOpener
from .._core.watching import watch_key
from .._runner.runner import LogStore, Transaction, VersionRow, drive
from .._sql import migrations
from .._sql.catalogue import (
    CHANGES_ADDED_SQL,
    CHANGES_REMOVED_SQL,
    CHANGES_VERSIONS_SQL,
    LIVE_ENTRIES_SQL,
    SET_DATA_KEY_SQL,
    branch_tail_params,
    branch_walk_from_rows,
    list_states_sql,
    plan_statements,
    purge_statements,
    scan_sql,
    version_row_params,
)
from ..errors import (
    ConcurrencyError,
    InvalidConfigError,
    StoreUnavailableError,
)
from ..keyring import KeyProvider
from ..model import Entry
from . import citus, connection, schema, statements
from .arrays import TextArray, register_array_dumpers
from .errors import connect_error, translated
from .guarded import delegated_write, guard_sql, guarded_write, routed_write
from .listener import NotificationFeed
from .notifier import NotificationSender

__all__ = ["PostgresStore"]

T = TypeVar("T")

_CLEAN_STATES = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
# Optimistic tries of one operation before it takes the locking path, which
# cannot lose a race: under heavy contention on one session every call lands.
_OPTIMISTIC_ATTEMPTS = 3
# Index rows this store last wrote, kept so an append can skip its read (not
# rows with larger metadata: the map's memory stays small).
_KNOWN_STATES = 10_000
_KNOWN_METADATA_BYTES = 4096
# Runs of an operation whose session another writer created under it. The
# second run sees the session (locked), so it loses again only if the session
# was deleted and created again in between.
_CREATION_ATTEMPTS = 3


class _CreationRaced(Exception):
    """The session this transaction created was created by another writer first.

    Nothing was written; the operation runs again. Never leaves the store.
    """


def _as_is(moment: datetime) -> datetime:
    return moment  # timestamptz takes the aware datetime itself


@contextmanager
def _pipeline(conn: Connection[Any]) -> Iterator[None]:
    """A pipeline on `conn`; any failure inside it closes `conn`, so the pool replaces it.

    psycopg records a statement as prepared when it queues the statement's fifth
    use, before the server answers. If an earlier statement of the pipeline
    fails, the server never prepares it, and no later ROLLBACK clears that record
    (psycopg looks for one only when it first sees a statement). Such a
    connection would fail every later use of the statement with
    InvalidSqlStatementName, so it never goes back to the pool as it is.
    """
    try:
        with conn.pipeline():
            yield
    except BaseException:
        if not conn.closed:
            _closed_alive.add(conn)
        conn.close()
        raise


# Connections `_pipeline` closed while the server still had them: their failure
# was the statement's, not a lost connection's, so it is not retried.
_closed_alive: weakref.WeakSet[Connection[Any]] = weakref.WeakSet()


def _lost(conn: Connection[Any]) -> bool:
    """Whether a failed connection was lost (the server dropped it), not closed by us."""
    return conn.closed and conn not in _closed_alive


def _in_tenant(
    conn: Connection[Any],
    tenant: str,
    query: str,
    params: Sequence[Any] | Mapping[str, Any],
    *,
    binary: bool = False,
    custom_plan: bool = False,
    in_block: bool = False,
    rls: bool = True,
) -> Cursor[Any]:
    """Run one statement of an autocommit connection in the tenant: one round trip.

    The tenant's setting (transaction-local) and the statement go in one
    pipeline, which psycopg ends with one Sync: the server runs both, in that
    order, in one implicit transaction that ends (commits) at the Sync. So the
    statement keeps its one round trip, runs with the tenant set, which
    row-level security needs, and the setting ends with it. Returns the
    statement's cursor, its rows ready to fetch.

    Args:
        custom_plan: plan the statement for its values (see `guarded`).
        in_block: distributed tables under row-level security: the policies run
            on the workers, which see the setting only as a SET LOCAL inside a
            transaction block (`statements.tenant_setting`), so BEGIN and COMMIT
            join the pipeline (still one round trip, but more work for Citus).
        rls: row-level security applies to the connected role. A role that skips
            it (a superuser, BYPASSRLS) gains nothing from the setting, so its
            statement goes alone, without psycopg's pipeline (about 0.15 ms of
            client CPU per statement, README "Choices"); it names
            its tenant all the same. Had the role lost that right since the
            store checked, the policies see no tenant and refuse: never another's rows.
    """
    cursor = conn.cursor(binary=binary)
    if not (rls or in_block or custom_plan):
        cursor.execute(query, params)
        return cursor
    setting = statements.tenant_setting(tenant, distributed=in_block, custom_plan=custom_plan)
    with _pipeline(conn):
        if in_block:
            conn.execute(statements.WRITE_BEGIN_SQL)
        conn.execute(*setting)
        cursor.execute(query, params)
        if in_block:
            conn.execute("COMMIT")
    return cursor


def _routed(conn: Connection[Any], tenant: str, writes: list[tuple[str, Any]]) -> bool:
    """Run `guarded.routed_write`'s statements as one transaction, in one pipeline.

    BEGIN, the tenant's setting, the statements and COMMIT go in one round
    trip; on distributed tables each statement is single-shard, all on the
    session's shard, so Citus commits on one worker without two-phase commit.
    Returns False if the first statement found the session changed (the
    transaction aborted, nothing was written).
    """
    try:
        with _pipeline(conn):
            conn.execute(statements.WRITE_BEGIN_SQL)
            conn.execute(*statements.tenant_setting(tenant, distributed=True))
            for query, params in writes:
                conn.execute(query, params)
            conn.execute("COMMIT")
    except pg_errors.DivisionByZero:  # guarded.LOST_RACE_SQLSTATE
        return False
    return True


def _send_plan(
    conn: Connection[Any],
    plan: WritePlan,
    read: SessionState | None,
    *,
    tenant: str,
    absent: bool,
    delegated: bool,
    distributed: bool,
    rls: bool,
) -> bool:
    """Send `plan`, guarded on the index row `read`, in one round trip; whether it landed.

    On distributed tables: one call of the write function if it is distributed
    too (`delegated`: outside a transaction block Citus forwards the call to the
    worker that holds the session, which runs it as its own local transaction),
    else the routed statements in one transaction. Otherwise the one guarded
    statement, in autocommit mode (`_in_tenant`). With `absent`, also only if
    none of the appended ids has a record.
    """
    if delegated:
        query, params = delegated_write(plan, read, tenant=tenant, absent=absent)
        return _delegated(conn, query, params)
    if distributed:
        return _routed(conn, tenant, routed_write(plan, read, tenant=tenant, absent=absent))
    query, params = guarded_write(plan, read, tenant=tenant, absent=absent)
    # Stamping removals looks seqs up with `seq = ANY(...)`, an index lookup
    # only in a plan that knows the array; the pool's generic plans would
    # filter the session's rows. So that write asks for a custom plan.
    cursor = _in_tenant(conn, tenant, query, params, custom_plan=bool(plan.removals), rls=rls)
    row = cursor.fetchone()
    return row is not None and row[0] == 1


def _delegated(conn: Connection[Any], query: str, params: dict[str, Any]) -> bool:
    """Run `guarded.delegated_write`'s call alone, in autocommit mode; whether it wrote."""
    cursor = conn.execute(query, params)
    row = cursor.fetchone()
    return row is not None and row[0] == 1


class _PostgresTransaction:
    """A transaction on one connection; `apply` queues writes for the commit pipeline.

    Every statement names the tenant (`tenant = ...` leads every key), and the
    transaction runs with the tenant's setting, which the row-level security
    policies check: set by `_begun` for a transaction, or per statement
    (`_in_tenant`) when `autocommit`.
    """

    def __init__(
        self,
        conn: Connection[Any],
        *,
        locking: bool,
        tenant: str,
        autocommit: bool = False,
        distributed: bool = False,
        reads_in_block: bool = False,
        rls: bool = True,
    ) -> None:
        self._conn = conn
        self._locking = locking
        self._distributed = distributed
        # Autocommit reads set the tenant in a transaction block (`_in_tenant`).
        self._reads_in_block = reads_in_block
        # Whether row-level security applies to the role (`_in_tenant`).
        self._rls = rls
        self._tenant = tenant
        self._autocommit = autocommit
        self.pending: list[tuple[str, list[tuple[Any, ...]]]] = []
        # The statement that creates the session, when the plan creates one
        # (on distributed tables, the statements: `guarded.routed_write`).
        self._creation: tuple[str, dict[str, Any]] | None = None
        self._routed_creation: list[tuple[str, Any]] = []
        # The watch keys of the sessions written here: the store notifies them
        # once the transaction committed (`_postgres.notifier`).
        self.notify_keys: set[str] = set()

    def _rows(
        self, query: str, params: Sequence[Any] | Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        if self._autocommit:
            cursor = _in_tenant(
                self._conn,
                self._tenant,
                query,
                params,
                binary=True,
                in_block=self._reads_in_block,
                rls=self._rls,
            )
        else:
            cursor = self._conn.cursor(binary=True)
            cursor.execute(query, params)
        return cursor.fetchall()

    def _named(self, session_id: str, **params: Any) -> dict[str, Any]:
        """Named parameters of one session of this tenant."""
        return {"tenant": self._tenant, "sid": session_id, **params}

    def state(self, session_id: str) -> SessionState | None:
        state, _ = self.state_and_latest(session_id, ())
        return state

    def latest_records(self, session_id: str, entry_ids: Sequence[str]) -> dict[str, Record]:
        if not entry_ids:
            return {}
        rows = self._rows(
            statements.LATEST_SQL, self._named(session_id, ids=TextArray(entry_ids))
        )
        return {row[2]: statements.record_from_row(row) for row in rows}

    def state_and_latest(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> tuple[SessionState | None, dict[str, Record]]:
        if self._autocommit:  # each read a statement of its own in the tenant (`_rows`)
            rows = self._rows(statements.STATE_SQL, (self._tenant, session_id))
            state = statements.state_from_row(rows[0]) if rows else None
            return state, self.latest_records(session_id, entry_ids)
        state_sql = statements.STATE_FOR_UPDATE_SQL if self._locking else statements.STATE_SQL
        state_cursor = self._conn.cursor(binary=True)
        latest_cursor = self._conn.cursor(binary=True)
        with _pipeline(self._conn):  # both reads in one round trip
            state_cursor.execute(state_sql, (self._tenant, session_id))
            if entry_ids:
                latest_cursor.execute(
                    statements.LATEST_SQL, self._named(session_id, ids=TextArray(entry_ids))
                )
        rows = state_cursor.fetchall()
        latest_rows = latest_cursor.fetchall() if entry_ids else []
        if not rows and self._locking:
            # No row to lock yet: creators of one session serialize on a lock, and the
            # ids are looked up again in case another creator got there first.
            self._conn.execute(statements.CREATION_LOCK_SQL, (self._tenant, session_id))
            rows = self._rows(statements.STATE_FOR_UPDATE_SQL, (self._tenant, session_id))
            if rows and entry_ids:
                latest_rows = self._rows(
                    statements.LATEST_SQL, self._named(session_id, ids=TextArray(entry_ids))
                )
        state = statements.state_from_row(rows[0]) if rows else None
        return state, {row[2]: statements.record_from_row(row) for row in latest_rows}

    def live_records(self, session_id: str, *, payloads: bool) -> list[Record]:
        query = statements.LIVE_WITH_PAYLOADS_SQL if payloads else statements.LIVE_DIGESTS_SQL
        rows = self._rows(query, (self._tenant, session_id))
        return [statements.record_from_row(row) for row in rows]

    def live_entries(
        self, session_id: str, *, raw: bool, opener: RowOpener | None = None
    ) -> list[Entry]:
        rows = self._rows(LIVE_ENTRIES_SQL, (self._tenant, session_id))
        return entries_from_rows(rows if opener is None else opener(rows), raw=raw)

    def records_at(self, session_id: str, version: int) -> list[Record]:
        rows = self._rows(
            statements.RECORDS_AT_SQL, (self._tenant, session_id, version, version)
        )
        return [statements.record_from_row(row) for row in rows]

    def version_row(self, session_id: str, version: int) -> VersionRow | None:
        rows = self._rows(
            statements.VERSION_ROW_SQL, version_row_params(self._tenant, session_id, version)
        )
        if not rows:
            return None
        leaf_id, created_at, metadata = rows[0]
        return VersionRow(leaf_id, bytes(metadata), statements.state_time(created_at))

    def apply(self, plan: WritePlan) -> None:
        if plan.creates and self._distributed:
            self._routed_creation = routed_write(plan, None, tenant=self._tenant)
        elif plan.creates:
            # The optimistic writers' creation statement (see the module docstring).
            self._creation = guarded_write(plan, None, tenant=self._tenant)
        else:
            self.pending.extend(
                plan_statements(plan, tenant=self._tenant, paramstyle="%s", time=_as_is)
            )
        self.notify_keys.add(watch_key(plan.state.session_id, self._tenant))

    def delete(self, session_id: str) -> bool:
        deleted = 0
        for statement in statements.DELETE_SQL:
            cursor = self._conn.execute(statement, (self._tenant, session_id))
            deleted = cursor.rowcount
        if deleted:
            self.notify_keys.add(watch_key(session_id, self._tenant))
        return deleted > 0

    def set_data_key(self, session_id: str, stored: bytes, data_key: bytes) -> bool:
        cursor = self._conn.execute(
            SET_DATA_KEY_SQL, (data_key, self._tenant, session_id, stored)
        )
        return cursor.rowcount > 0

    def purge(self, plan: PurgePlan) -> int:
        counts = []
        for statement, rows in purge_statements(
            plan, tenant=self._tenant, paramstyle="%s", length="octet_length"
        ):
            cursor = self._conn.execute(statement, rows[0])
            counts.append(cursor.rowcount)
        return counts[0]

    def list_states(self, query: StateQuery) -> list[SessionState]:
        sql, params = list_states_sql(self._tenant, query, paramstyle="%s", time=_as_is)
        return [statements.state_from_row(row) for row in self._rows(sql, params)]

    def live_record(self, session_id: str, entry_id: str) -> Record | None:
        rows = self._rows(statements.LIVE_RECORD_SQL, (self._tenant, session_id, entry_id))
        return statements.record_from_row(rows[0]) if rows else None

    def branch_tail(self, session_id: str, leaf_id: str | None, limit: int) -> BranchWalk:
        params = branch_tail_params(self._tenant, session_id, leaf_id, limit)
        return branch_walk_from_rows(self._rows(statements.BRANCH_TAIL_SQL, params))

    def scan_records(
        self, session_id: str, id_prefix: str, after_id: str | None, limit: int | None
    ) -> list[Record]:
        sql, params = scan_sql(
            self._tenant, session_id, id_prefix, after_id, limit, paramstyle="%s"
        )
        return [statements.record_from_row(row) for row in self._rows(sql, params)]

    def end_read(self) -> None:
        """End a read transaction."""
        self._conn.execute("COMMIT")

    def commit(self) -> None:
        """Send the queued writes and COMMIT in one pipeline: one round trip.

        Raises:
            _CreationRaced: another writer created the session first; nothing was written.
        """
        creation = self._conn.cursor()
        try:
            self._send_and_commit(creation)
        except pg_errors.DivisionByZero:  # guarded.LOST_RACE_SQLSTATE: a routed creation raced
            raise _CreationRaced from None
        if self._creation is not None:
            row = creation.fetchone()
            if row is None or row[0] != 1:
                raise _CreationRaced

    def _send_and_commit(self, creation: Cursor[Any]) -> None:
        with _pipeline(self._conn):
            cursor = self._conn.cursor()
            for statement, rows in self.pending:
                if len(rows) == 1:
                    cursor.execute(statement, rows[0])
                else:
                    cursor.executemany(statement, rows)
            if self._creation is not None:
                creation.execute(*self._creation)
            for query, params in self._routed_creation:
                cursor.execute(query, params)
            self._conn.execute("COMMIT")

    # -- the change feed ----------------------------------------------------------

    def log_between(
        self, session_id: str, after: int, until: int, *, next_seq: int
    ) -> LogSlice:
        params = self._named(session_id, after=after, until=until, next_seq=next_seq)
        cursors = [self._conn.cursor(binary=True) for _ in range(3)]
        with _pipeline(self._conn):  # the three reads in one round trip
            for cursor, sql in zip(
                cursors, (CHANGES_ADDED_SQL, CHANGES_REMOVED_SQL, CHANGES_VERSIONS_SQL), strict=True
            ):
                cursor.execute(sql, params)
        added, removed, versions = [cursor.fetchall() for cursor in cursors]
        return LogSlice(
            [statements.record_from_row(row) for row in added],
            [(entry_id, version) for entry_id, version in removed],
            [
                VersionChange(
                    version,
                    leaf_id,
                    None if metadata is None else bytes(metadata),
                    statements.state_time(created_at),
                )
                for version, leaf_id, metadata, created_at in versions
            ],
        )


class _OptimisticTransaction(_PostgresTransaction):
    """Unlocked reads in autocommit mode, and at most one guarded write (`finish`).

    The guard compares the index row with the first state read; every write
    that could change what the later reads return changes that row, so reads
    taken from different snapshots never reach the database as a write.
    """

    def __init__(
        self,
        conn: Connection[Any],
        session_id: str,
        *,
        tenant: str,
        distributed: bool,
        reads_in_block: bool,
        rls: bool,
        delegated: bool,
    ) -> None:
        super().__init__(
            conn,
            locking=False,
            tenant=tenant,
            autocommit=True,
            distributed=distributed,
            reads_in_block=reads_in_block,
            rls=rls,
        )
        self._session_id = session_id
        self._delegated = delegated
        self._first_state: SessionState | None = None
        self._reads = 0
        self._plan: WritePlan | None = None

    def _saw(self, state: SessionState | None) -> None:
        if self._reads == 0:
            self._first_state = state
        self._reads += 1

    def state(self, session_id: str) -> SessionState | None:
        rows = self._rows(statements.STATE_SQL, (self._tenant, session_id))
        state = statements.state_from_row(rows[0]) if rows else None
        self._saw(state)
        return state

    def state_and_latest(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> tuple[SessionState | None, dict[str, Record]]:
        rows = self._rows(
            statements.STATE_AND_LATEST_SQL, self._named(session_id, ids=TextArray(entry_ids))
        )
        state = statements.state_from_row(rows[0]) if rows else None
        self._saw(state)
        width = statements.STATE_WIDTH
        latest = {
            row[width + 2]: statements.record_from_row(row[width:])
            for row in rows
            if row[width] is not None  # seq: NULL when no record of the ids was found
        }
        return state, latest

    def latest_records(self, session_id: str, entry_ids: Sequence[str]) -> dict[str, Record]:
        self._reads += 1
        return super().latest_records(session_id, entry_ids)

    def live_records(self, session_id: str, *, payloads: bool) -> list[Record]:
        self._reads += 1
        return super().live_records(session_id, payloads=payloads)

    def apply(self, plan: WritePlan) -> None:
        self._plan = plan

    @property
    def state_after(self) -> SessionState | None:
        """The index row once `finish` landed: the plan's, or the one read."""
        return self._plan.state if self._plan is not None else self._first_state

    @property
    def wrote(self) -> bool:
        """Whether `finish` has a plan to write (so, once it landed, watchers to notify)."""
        return self._plan is not None

    def finish(self) -> bool:
        """Write the plan if the session is still as first read; False if it was not.

        Without a plan, reads from more than one statement are checked the same
        way, so a "nothing to do" is never concluded from mixed snapshots.
        """
        if self._plan is not None:
            return _send_plan(
                self._conn,
                self._plan,
                self._first_state,
                tenant=self._tenant,
                absent=False,
                delegated=self._delegated,
                distributed=self._distributed,
                rls=self._rls,
            )
        if self._reads <= 1:
            return True
        query, params = guard_sql(self._session_id, self._first_state, self._tenant)
        cursor = _in_tenant(
            self._conn, self._tenant, query, params, in_block=self._reads_in_block, rls=self._rls
        )
        row = cursor.fetchone()
        return row is not None and row[0] == 1


def _end_unfinished(conn: Connection[Any]) -> None:
    """After a failure, roll back; a connection left mid-query is closed instead."""
    if conn.closed or conn.info.transaction_status == TransactionStatus.IDLE:
        return
    if conn.info.transaction_status in _CLEAN_STATES:
        try:
            conn.execute("ROLLBACK")
            return
        except psycopg.Error:
            pass
    # Mid-query (a cancelled task) or broken: the pool discards a closed connection.
    conn.close()


def _applied_version(conn: Connection[Any]) -> int:
    cursor = conn.execute(schema.TABLE_EXISTS_SQL, (migrations.VERSION_TABLE,))
    row = cursor.fetchone()
    if row is None or not row[0]:
        found = []
        for table in migrations.OUR_TABLES:
            cursor = conn.execute(schema.TABLE_EXISTS_SQL, (table,))
            exists = cursor.fetchone()
            if exists is not None and exists[0]:
                found.append(table)
        if found:
            raise schema.foreign_tables_error(found)
        return 0
    cursor = conn.execute(schema.APPLIED_VERSION_SQL)
    version = cursor.fetchone()
    return 0 if version is None else int(version[0])


def _tables_distributed(conn: Connection[Any]) -> bool:
    """Whether eventlog's tables are distributed by Citus (then writes take `routed_write`)."""
    cursor = conn.execute(citus.CITUS_INSTALLED_SQL)
    row = cursor.fetchone()
    if row is None or not row[0]:
        return False
    cursor = conn.execute(citus.DISTRIBUTED_TABLES_SQL, (list(migrations.OUR_TABLES),))
    return bool(cursor.fetchall())


def _write_function_delegated(conn: Connection[Any]) -> bool:
    """Whether the schema has the distributed write function (then writes take
    `delegated_write`; tables distributed without it take `routed_write`)."""
    cursor = conn.execute(citus.WRITE_FUNCTION_DELEGATED_SQL)
    row = cursor.fetchone()
    return row is not None and bool(row[0])


def _rls_applies(conn: Connection[Any]) -> bool:
    """Whether row-level security applies to the connected role (not a superuser or BYPASSRLS).

    On distributed tables a role that skips the policies needs no tenant
    setting on the workers, so its autocommit reads skip the transaction block
    that would carry it there; its statements name the tenant all the same.
    """
    cursor = conn.execute(schema.RLS_APPLIES_SQL)
    row = cursor.fetchone()
    return row is None or bool(row[0])


def _migrate(conn: Connection[Any], partitions: int | None) -> list[int]:
    conn.execute(schema.LOCK_MIGRATION_SQL)
    try:
        conn.execute("BEGIN")
        try:
            plan = schema.plan_migrations(_applied_version(conn), partitions)
            for statement, params in plan.statements:
                conn.execute(statement, params or None)
            conn.execute("COMMIT")
        except BaseException:
            _end_unfinished(conn)
            raise
    finally:
        if not conn.closed:
            conn.execute(schema.UNLOCK_MIGRATION_SQL)
    if plan.versions:
        logger.info("migrate", backend="postgres", applied=plan.versions)
    return plan.versions


def _has_unread_input(conn: Connection[Any]) -> bool:
    """Whether an idle connection's socket has something to read (no round trip)."""
    try:
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (AttributeError, OSError, ValueError, psycopg.Error):  # no poll(), or closed
        return True


class PostgresStore(LogStore):
    """A store in PostgreSQL. Open it with `PostgresStore.open(url)`.

    Args:
        url: a libpq URL, ``postgresql://user@host:5432/db``.
        min_size: connections the pool keeps open.
        timeout: seconds to wait for a connection (from the pool, or a new one).
        migrate: apply pending schema migrations on open.
        partitions: with `migrate`, create a new schema hash-partitioned into
            this many partitions by session_id.
        max_entry_bytes: the largest encoded entry accepted.
        max_size: connections the pool opens at most (a store that notifies
            also holds one connection of its own for that: `notifier`).
        notify: each write that landed notifies the session's watchers in
            any process (LISTEN/NOTIFY), after its commit, from the store's
            notification connection (`_postgres.notifier`). Off, watchers
            elsewhere see writes at their next safety re-read, within about
            a second.
        tenant: the tenant whose sessions the store reads and writes (None: the
            default tenant ``""``). Every statement names it, and every
            transaction sets it for the row-level security policies.
        keyring: seals new sessions' payloads and metadata and opens sealed
            ones (a `Keyring` or another `KeyProvider`; DESIGN.md section 8).
        snapshot_memo_bytes: payload bytes of the last snapshots saved that the
            store remembers, so that the next `save` of a session does not check
            again what did not change (None: 16 MiB, about five times that in
            memory; 0: remember nothing).
    """

    # The pool's class: a subclass may track which connection each call holds
    # (`_postgres.threaded`).
    _pool_class: ClassVar[type[ConnectionPool[Connection[Any]]]] = ConnectionPool

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        migrate: bool = True,
        partitions: int | None = None,
        max_entry_bytes: int | None = None,
        notify: bool = True,
        tenant: str | None = None,
        keyring: KeyProvider | None = None,
        snapshot_memo_bytes: int | None = None,
    ) -> None:
        super().__init__(
            max_entry_bytes=max_entry_bytes,
            keyring=keyring,
            snapshot_memo_bytes=snapshot_memo_bytes,
        )
        self.tenant = check_tenant(tenant)
        connection.check_url(url)
        self._notifies = check_flag("notify", notify)
        if partitions is not None and (
            isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1
        ):
            raise InvalidConfigError("partitions must be a positive int")
        if not 1 <= min_size <= max_size:
            raise InvalidConfigError("pool sizes must satisfy 1 <= min_size <= max_size")
        self.url = url
        self._timeout = float(timeout)
        self._migrate_on_open = migrate
        self._max_size = max_size
        self._partitions = partitions
        self._known: OrderedDict[str, SessionState] = OrderedDict()
        # Whether the tables are distributed (Citus), whether the write function
        # is distributed with them (`citus.WRITE_FUNCTION`), and whether row-level
        # security applies to the connected role there, found on open (`_start`).
        self._distributed = False
        self._delegated = False
        self._reads_in_block = False
        self._rls = True
        self._pool = self._pool_class(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=self._timeout,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": max(1, round(self._timeout))},
            reconnect_timeout=max(self._timeout, 30.0),
            configure=self._configure_connection,
        )
        self._wakeups.feed = NotificationFeed(
            self._wakeups, url, connect_timeout=max(1, round(self._timeout))
        )
        self._notifier = NotificationSender(url, connect_timeout=max(1, round(self._timeout)))

    def __repr__(self) -> str:
        # Never the URL: it may hold a password.
        return f"<{type(self).__name__} tenant={self.tenant!r}>"

    def _watch_key(self, session_id: str) -> str:
        return watch_key(session_id, self.tenant)

    def _configure_connection(self, conn: Connection[Any]) -> None:
        """Settings of every pooled connection, in one round trip.

        - CONNECTION_SETTINGS (see `connection.py`): plans of prepared statements
          are kept, and are index lookups even when made on empty tables.
        - synchronous_commit: a returned write must survive a crash (DESIGN.md),
          so a server, role or URL default of `off` is raised to `on`; stronger
          settings (remote_write, remote_apply) are kept.
        - Typed array parameters (`_postgres.arrays`), sent without per-call type discovery.
        """
        register_array_dumpers(conn)
        conn.execute(connection.configure_sql(distributed=self._distributed))

    @classmethod
    def open(cls, url: str, **options: Any) -> PostgresStore:
        """Connect, migrate (unless ``migrate=False``) and open the pool.

        Raises:
            InvalidConfigError: the URL or an option is not usable.
            StoreUnavailableError: the server cannot be reached, or refuses us.
            SchemaVersionError: the schema is newer than this eventlog, or not ours.
        """
        store = cls(url, **options)
        try:
            store._start()
        except BaseException:
            store._pool.close()
            raise
        return store

    def _direct_connection(self) -> Connection[Any]:
        try:
            return Connection.connect(
                self.url, autocommit=True, connect_timeout=max(1, round(self._timeout))
            )
        except psycopg.Error as exc:
            raise connect_error(exc) from None

    def _start(self) -> None:
        conn = self._direct_connection()
        try:
            with translated():
                if self._migrate_on_open:
                    _migrate(conn, self._partitions)
                else:
                    migrations.check_current(
                        "postgres",
                        _applied_version(conn),
                        how_to_migrate="run `eventlog migrate --url ...` or connect with "
                        "migrate=True",
                    )
                self._distributed = _tables_distributed(conn)
                self._rls = _rls_applies(conn)
                self._delegated = self._distributed and _write_function_delegated(conn)
                self._reads_in_block = self._distributed and self._rls
        finally:
            conn.close()
        with translated():
            self._pool.open(wait=True, timeout=self._timeout)

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; returns the versions applied."""
        conn = self._direct_connection()
        try:
            with translated():
                return _migrate(conn, self._partitions)
        finally:
            conn.close()

    def _begun(self, begin: str) -> Connection[Any]:
        """A pooled connection inside a new transaction.

        BEGIN is the first thing sent on a checked-out connection, so it also
        serves as the liveness check: a connection the server dropped (a
        restart, an idle timeout) fails there with nothing done, and is
        replaced by a fresh one. That saves a ping round trip per call. The
        tenant's setting goes in the same pipeline: still one round trip.
        """
        for attempt in range(self._max_size + 1):
            with translated():
                conn = self._pool.getconn()
            try:
                with _pipeline(conn):
                    conn.execute(begin)
                    conn.execute(
                        *statements.tenant_setting(self.tenant, distributed=self._distributed)
                    )
                return conn
            except psycopg.OperationalError:
                _end_unfinished(conn)
                self._pool.putconn(conn)
                if attempt == self._max_size:
                    raise
                logger.warning("postgres.stale_connection_replaced", attempt=attempt + 1)
            except BaseException:
                _end_unfinished(conn)
                self._pool.putconn(conn)
                raise
        raise AssertionError("unreachable")

    @contextmanager
    def _transaction(
        self, begin: str, *, locking: bool
    ) -> Iterator[_PostgresTransaction]:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        with translated():
            conn = self._begun(begin)
        try:
            with translated():
                yield _PostgresTransaction(
                    conn,
                    locking=locking,
                    tenant=self.tenant,
                    distributed=self._distributed,
                )
        except BaseException:
            _end_unfinished(conn)
            raise
        finally:
            self._pool.putconn(conn)

    def _execute(self, operation: Operation[T]) -> T:
        # A driver error translated without its session gets it in the runner
        # (`settle_error`), like every other error leaving an operation.
        sid = operation.session_id
        if operation.mode == "read" and operation.single_statement:
            return self._read_one_statement(operation)
        # A write forgets the session's row until it knows the new one (a
        # forgotten or stale row only costs the read it would have saved).
        known = self._known.pop(sid, None) if operation.mode == "write" else None
        if known is not None and operation.plan_if_new is not None:
            unread = operation.plan_if_new(known)
            if unread is not None:
                plan, unread_result = unread
                if self._append_unread(plan, known):
                    self._remember(plan.state)
                    return unread_result
                logger.debug("postgres.unread_append_missed", session_id=sid)
        if operation.optimistic:
            for attempt in range(_OPTIMISTIC_ATTEMPTS):
                landed, result = self._optimistic(operation)
                if landed:
                    return result
                logger.debug("postgres.write_lost_race", session_id=sid, attempt=attempt + 1)
        for attempt in range(_CREATION_ATTEMPTS):
            try:
                return super()._execute(operation)
            except _CreationRaced:
                logger.debug("postgres.creation_raced", session_id=sid, attempt=attempt + 1)
        raise ConcurrencyError(
            "the session was deleted and created again by other writers during this call; retry it",
            session_id=sid,
        )

    def _remember(self, state: SessionState | None) -> None:
        """Keep the index row this store just wrote (or read, with nothing to write)."""
        if state is None or len(state.metadata) > _KNOWN_METADATA_BYTES:
            return
        self._known[state.session_id] = state
        # Threads of the sync store share this map: each call here is atomic.
        with suppress(KeyError):
            while len(self._known) > _KNOWN_STATES:
                self._known.popitem(last=False)

    def _append_unread(self, plan: WritePlan, known: SessionState) -> bool:
        """Send an append planned on a known index row, in one round trip; whether it landed.

        The write applies only if the session is still `known` and none of its
        ids has a record, which is what the plan assumed; otherwise nothing is
        written and the caller reads and plans. A pooled connection with unread
        input (the server's goodbye after a restart or termination, or a
        notice) is not used for it: the read path replaces a dead one.
        """
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        with translated():
            conn = self._pool.getconn()
        try:
            if _has_unread_input(conn):
                return False
            with translated(committing=True):
                landed = _send_plan(
                    conn,
                    plan,
                    known,
                    tenant=self.tenant,
                    absent=True,
                    delegated=self._delegated,
                    distributed=self._distributed,
                    rls=self._rls,
                )
            if landed:
                self._notify(plan.state.session_id)
            return landed
        except BaseException:
            _end_unfinished(conn)
            raise
        finally:
            self._pool.putconn(conn)

    def _read_one_statement(self, operation: Operation[T]) -> T:
        """Run a read of one statement in autocommit mode: one round trip, no BEGIN.

        The tenant's setting and the statement go in one pipeline, one implicit
        transaction (`_in_tenant`); the statement is its own snapshot. A pooled
        connection the server dropped fails on it harmlessly (a read), and is
        replaced by a fresh one.
        """
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        for attempt in range(self._max_size + 1):
            with translated():
                conn = self._pool.getconn()
            try:
                tx = _PostgresTransaction(
                    conn,
                    locking=False,
                    tenant=self.tenant,
                    autocommit=True,
                    distributed=self._distributed,
                    reads_in_block=self._reads_in_block,
                    rls=self._rls,
                )
                try:
                    return drive(operation.steps(), tx)
                except psycopg.OperationalError:
                    _end_unfinished(conn)
                    if attempt == self._max_size or not _lost(conn):
                        with translated():
                            raise
                    logger.warning("postgres.stale_connection_replaced", attempt=attempt + 1)
                except psycopg.Error:
                    with translated():
                        raise
            except BaseException:
                _end_unfinished(conn)
                raise
            finally:
                self._pool.putconn(conn)
        raise AssertionError("unreachable")

    def _optimistic(self, operation: Operation[T]) -> tuple[bool, T]:
        """One optimistic try: whether its write landed, and the operation's result.

        The reads run before anything is written, so a pooled connection the
        server dropped fails there harmlessly and is replaced by a fresh one.
        """
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        for attempt in range(self._max_size + 1):
            with translated():
                conn = self._pool.getconn()
            try:
                tx = _OptimisticTransaction(
                    conn,
                    operation.session_id,
                    tenant=self.tenant,
                    distributed=self._distributed,
                    reads_in_block=self._reads_in_block,
                    rls=self._rls,
                    delegated=self._delegated,
                )
                try:
                    result = drive(operation.steps(), tx)
                except psycopg.OperationalError:
                    _end_unfinished(conn)
                    if attempt == self._max_size or not _lost(conn):
                        with translated():
                            raise
                    logger.warning("postgres.stale_connection_replaced", attempt=attempt + 1)
                    continue
                except psycopg.Error:
                    with translated():
                        raise
                with translated(committing=True):
                    landed = tx.finish()
                if landed:
                    self._remember(tx.state_after)
                    if tx.wrote:
                        self._notify(operation.session_id)
                return landed, result
            except BaseException:
                _end_unfinished(conn)
                raise
            finally:
                self._pool.putconn(conn)
        raise AssertionError("unreachable")

    def _notify(self, session_id: str) -> None:
        """After a write landed: wake the session's watchers, in any process."""
        if self._notifies:
            self._notifier.send(watch_key(session_id, self.tenant))

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        with self._transaction(statements.WRITE_BEGIN_SQL, locking=True) as tx:
            yield tx
            with translated(committing=True):
                tx.commit()
            for key in sorted(tx.notify_keys) if self._notifies else ():
                self._notifier.send(key)

    @contextmanager
    def _read(self) -> Iterator[Transaction]:
        with self._transaction(statements.READ_BEGIN_SQL, locking=False) as tx:
            yield tx
            with translated():
                tx.end_read()

    def _close(self) -> None:
        try:
            self._pool.close()
        finally:
            # Blocks for the last batch: a notification round trip at most.
            self._notifier.close()
