"""The SQLite backend: the embedded default.

WAL journal, `synchronous=FULL` unless asked otherwise, `BEGIN IMMEDIATE` for
writes (one writer at a time, waiting up to the busy timeout) and snapshot
reads. Connections are pooled, so one store serves many threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from .._core.codec import check_tenant
from .._core.folding import entries_from_rows
from .._core.log import logger
from .._core.options import check_flag, check_seconds
from .._core.planning import PurgePlan, WritePlan
from .._core.records import BranchWalk, LogSlice, Record, SessionState, StateQuery, VersionChange
from .._core.storage_requests import RowOpener
from .._runner.runner import LogStore, Transaction, VersionRow
from .._runner.threaded import ThreadedAsyncStore
from .._sql import migrations
from .._sql.catalogue import (
    CHANGES_ADDED_SQL,
    CHANGES_REMOVED_SQL,
    CHANGES_VERSIONS_SQL,
    DELETE_SESSION_SQL,
    LIVE_ENTRIES_SQL,
    LIVE_RECORD_SQL,
    RECORD_COLUMNS,
    RECORDS_AT_SQL,
    SET_DATA_KEY_SQL,
    STATE_SQL,
    VERSION_ROW_SQL,
    branch_tail_params,
    branch_tail_sql,
    branch_walk_from_rows,
    list_states_sql,
    live_records_sql,
    named_qmark,
    newest_by_id,
    plan_statements,
    purge_statements,
    qmark,
    scan_sql,
    state_from_row,
    version_row_params,
)
from .._sql.id_ranges import iter_chunks
from ..errors import (
    InvalidConfigError,
    SchemaVersionError,
    StoreUnavailableError,
)
from ..keyring import KeyProvider
from ..model import Entry
from .change_counter import ChangeCounterFeed
from .errors import translated as _translated

__all__ = ["AsyncSQLiteStore", "SQLiteStore", "records_of_ids_sql"]

_WAL_RETRY_FIRST: Final = 0.001
_WAL_RETRY_MOST: Final = 0.05


def _enter_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Put the file in WAL mode, waiting out other connections up to the busy timeout.

    SQLite answers a journal-mode change with SQLITE_BUSY at once, without its
    busy handler, while another connection holds the file; that happens when
    several connections open a new file together (the first one is switching
    it to WAL). So the wait is done here.
    """
    deadline = time.monotonic() + busy_timeout
    pause = _WAL_RETRY_FIRST
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _WAL_RETRY_MOST)


Synchronous = Literal["full", "normal"]
_MAX_IDLE_CONNECTIONS: Final = 8
_IN_CHUNK: Final = 500
# The catalogue's statements in sqlite3's placeholders, and SQLite's empty blob.
_STATE_SQL: Final = qmark(STATE_SQL)
_LIVE_ENTRIES_SQL: Final = qmark(LIVE_ENTRIES_SQL)
_LIVE_WITH_PAYLOADS_SQL: Final = qmark(live_records_sql("payload"))
_LIVE_DIGESTS_SQL: Final = qmark(live_records_sql("x''"))
_RECORDS_AT_SQL: Final = qmark(RECORDS_AT_SQL)
_VERSION_ROW_SQL: Final = qmark(VERSION_ROW_SQL)
_LIVE_RECORD_SQL: Final = qmark(LIVE_RECORD_SQL)
_BRANCH_TAIL_SQL: Final = qmark(branch_tail_sql(lateral=False))


_CHANGES_SQL: Final = tuple(
    named_qmark(sql) for sql in (CHANGES_ADDED_SQL, CHANGES_REMOVED_SQL, CHANGES_VERSIONS_SQL)
)
_DELETE_SESSION_SQL: Final = tuple(qmark(statement) for statement in DELETE_SESSION_SQL)
_VERSION_TABLE_SQL: Final = (
    f"CREATE TABLE IF NOT EXISTS {migrations.VERSION_TABLE} (version INTEGER PRIMARY KEY, "
    "name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
)
_RECORD_MIGRATION_SQL: Final = (
    f"INSERT INTO {migrations.VERSION_TABLE} (version, name, applied_at) VALUES (?, ?, ?)"
)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _to_micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(micros: int) -> datetime:
    # Twice per write (the index row's two times): adding a timedelta takes half
    # the time of fromtimestamp + replace. A non-int (a column edited outside
    # eventlog) is refused as before, not read as a float.
    if type(micros) is not int:
        raise TypeError("a stored time is not an integer")
    return _EPOCH + timedelta(microseconds=micros)


def _state(row: Sequence[Any]) -> SessionState:
    return state_from_row(row, time=_from_micros)


def _record(row: Sequence[Any]) -> Record:
    return Record(*row)


def records_of_ids_sql(columns: str, count: int) -> str:
    """Every record of `count` ids of one session (parameters: tenant, session id
    and the ids, twice): live rows and replaced rows each through their own
    partial index, so the lookup never reads the rest of the session."""
    ids = f"tenant = ? AND session_id = ? AND entry_id IN ({','.join('?' * count)})"
    return (
        f"SELECT {columns} FROM entries WHERE {ids} AND removed_in_version IS NULL "
        f"UNION ALL SELECT {columns} FROM entries WHERE {ids} AND removed_in_version IS NOT NULL"
    )


def live_records_of_ids_sql(columns: str, count: int) -> str:
    """The live records of `count` ids of one session (parameters: tenant, session
    id and the ids): `records_of_ids_sql` for a session with no removed records."""
    return (
        f"SELECT {columns} FROM entries WHERE tenant = ? AND session_id = ? "
        f"AND entry_id IN ({','.join('?' * count)}) AND removed_in_version IS NULL"
    )


class _SQLiteTransaction:
    """A `Transaction` on one SQLite connection inside BEGIN ... COMMIT, in one tenant.

    Every statement names the tenant: `tenant = ?` leads every key.
    """

    def __init__(self, conn: sqlite3.Connection, tenant: str) -> None:
        self._conn = conn
        self._tenant = tenant

    def state(self, session_id: str) -> SessionState | None:
        row = self._conn.execute(_STATE_SQL, (self._tenant, session_id)).fetchone()
        return None if row is None else _state(row)

    def latest_records(
        self, session_id: str, entry_ids: Sequence[str], *, live_only: bool = False
    ) -> dict[str, Record]:
        latest: dict[str, Record] = {}
        columns = RECORD_COLUMNS.format(payload="x''")
        for chunk in iter_chunks(entry_ids, _IN_CHUNK):
            if live_only:
                sql = live_records_of_ids_sql(columns, len(chunk))
                params: tuple[str, ...] = (self._tenant, session_id, *chunk)
            else:
                sql = records_of_ids_sql(columns, len(chunk))
                params = (self._tenant, session_id, *chunk, self._tenant, session_id, *chunk)
            latest.update(newest_by_id(map(_record, self._conn.execute(sql, params))))
        return latest

    def state_and_latest(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> tuple[SessionState | None, dict[str, Record]]:
        # Read in one write transaction, the index row says what the log holds:
        # no row, no records (a delete takes both); no removed records, no need
        # to look among them.
        state = self.state(session_id)
        if state is None or not entry_ids:
            return state, {}
        return state, self.latest_records(session_id, entry_ids, live_only=state.removed_count == 0)

    def live_records(self, session_id: str, *, payloads: bool) -> list[Record]:
        query = _LIVE_WITH_PAYLOADS_SQL if payloads else _LIVE_DIGESTS_SQL
        return [Record(*row) for row in self._conn.execute(query, (self._tenant, session_id))]

    def live_entries(
        self, session_id: str, *, raw: bool, opener: RowOpener | None = None
    ) -> list[Entry]:
        rows = self._conn.execute(_LIVE_ENTRIES_SQL, (self._tenant, session_id))
        return entries_from_rows(rows if opener is None else opener(rows.fetchall()), raw=raw)

    def records_at(self, session_id: str, version: int) -> list[Record]:
        rows = self._conn.execute(_RECORDS_AT_SQL, (self._tenant, session_id, version, version))
        return [Record(*row) for row in rows]

    def version_row(self, session_id: str, version: int) -> VersionRow | None:
        row = self._conn.execute(
            _VERSION_ROW_SQL, version_row_params(self._tenant, session_id, version)
        ).fetchone()
        if row is None:
            return None
        leaf_id, created_at, metadata = row
        return VersionRow(leaf_id, metadata, _from_micros(created_at))

    def apply(self, plan: WritePlan) -> None:
        statements = plan_statements(plan, tenant=self._tenant, paramstyle="?", time=_to_micros)
        for statement, rows in statements:
            if len(rows) == 1:
                self._conn.execute(statement, rows[0])
            else:
                self._conn.executemany(statement, rows)

    def delete(self, session_id: str) -> bool:
        deleted = [
            self._conn.execute(statement, (self._tenant, session_id)).rowcount
            for statement in _DELETE_SESSION_SQL
        ]
        return deleted[-1] > 0

    def set_data_key(self, session_id: str, stored: bytes, data_key: bytes) -> bool:
        cursor = self._conn.execute(
            SET_DATA_KEY_SQL.replace("%s", "?"), (data_key, self._tenant, session_id, stored)
        )
        return cursor.rowcount > 0

    def purge(self, plan: PurgePlan) -> int:
        counts = [
            self._conn.execute(statement, rows[0]).rowcount
            for statement, rows in purge_statements(
                plan, tenant=self._tenant, paramstyle="?", length="length"
            )
        ]
        return counts[0]

    def list_states(self, query: StateQuery) -> list[SessionState]:
        sql, params = list_states_sql(self._tenant, query, paramstyle="?", time=_to_micros)
        rows = self._conn.execute(sql, params)
        return [_state(row) for row in rows]

    def live_record(self, session_id: str, entry_id: str) -> Record | None:
        row = self._conn.execute(_LIVE_RECORD_SQL, (self._tenant, session_id, entry_id)).fetchone()
        return None if row is None else Record(*row)

    def branch_tail(self, session_id: str, leaf_id: str | None, limit: int) -> BranchWalk:
        rows = self._conn.execute(
            _BRANCH_TAIL_SQL, branch_tail_params(self._tenant, session_id, leaf_id, limit)
        ).fetchall()
        return branch_walk_from_rows(rows)

    def scan_records(
        self, session_id: str, id_prefix: str, after_id: str | None, limit: int | None
    ) -> list[Record]:
        sql, params = scan_sql(self._tenant, session_id, id_prefix, after_id, limit, paramstyle="?")
        return [Record(*row) for row in self._conn.execute(sql, params)]

    # -- the change feed ----------------------------------------------------------

    def log_between(self, session_id: str, after: int, until: int, *, next_seq: int) -> LogSlice:
        params = {
            "tenant": self._tenant,
            "sid": session_id,
            "after": after,
            "until": until,
            "next_seq": next_seq,
        }
        added_sql, removed_sql, versions_sql = _CHANGES_SQL
        added = [Record(*row) for row in self._conn.execute(added_sql, params)]
        removed = [(i, v) for i, v in self._conn.execute(removed_sql, params)]
        versions = [
            VersionChange(version, leaf_id, metadata, _from_micros(created_at))
            for version, leaf_id, metadata, created_at in self._conn.execute(versions_sql, params)
        ]
        return LogSlice(added, removed, versions)


class SQLiteStore(LogStore):
    """A store in one SQLite file.

    Args:
        path: the database file; created with the schema if absent.
        synchronous: ``"full"`` (default: a returned write survives power loss)
            or ``"normal"`` (faster; survives process crashes, not power loss).
        busy_timeout: seconds a write waits for another writer before failing.
        migrate: apply pending schema migrations on open.
        max_entry_bytes: the largest encoded entry accepted.
        tenant: the tenant whose sessions the store reads and writes (None: the
            default tenant ``""``); tenants of one file are kept apart by key.
        keyring: seals new sessions' payloads and metadata and opens sealed
            ones (a `Keyring` or another `KeyProvider`; DESIGN.md section 8).
        snapshot_memo_bytes: payload bytes of the last snapshots saved that the
            store remembers, so that the next `save` of a session does not check
            again what did not change (None: 16 MiB, about five times that in
            memory; 0: remember nothing).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Synchronous = "full",
        busy_timeout: float = 30.0,
        migrate: bool = True,
        max_entry_bytes: int | None = None,
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
        if synchronous not in ("full", "normal"):
            raise InvalidConfigError("synchronous must be 'full' or 'normal'")
        if str(path) in ("", ":memory:"):
            raise InvalidConfigError("SQLite needs a file path; use memory:// for memory")
        self.file = Path(path)
        self._synchronous = synchronous.upper()
        self._busy_timeout = check_seconds("busy_timeout", busy_timeout, zero=True)
        check_flag("migrate", migrate)
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer = threading.Lock()
        self._wakeups.feed = ChangeCounterFeed(self._wakeups, self._watch_connection)
        if migrate:
            self.migrate()
        else:
            self._check_schema()

    def _open(self) -> sqlite3.Connection:
        with _translated():
            try:
                conn = sqlite3.connect(
                    self.file,
                    timeout=self._busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(
                    f"cannot open SQLite database {str(self.file)!r}: {exc}",
                    code=getattr(exc, "sqlite_errorname", None),
                ) from None
            try:
                _enter_wal(conn, self._busy_timeout)
                conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            except BaseException:
                conn.close()
                raise
            return conn

    def _watch_connection(self) -> sqlite3.Connection:
        """The change counter's own connection (it only reads `PRAGMA data_version`)."""
        return sqlite3.connect(self.file, isolation_level=None, check_same_thread=False)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    conn.close()
                    raise
            raise
        finally:
            self._release(conn)

    def _release(self, conn: sqlite3.Connection) -> None:
        keep = False
        if not conn.in_transaction:
            with self._lock:
                if not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS:
                    self._idle.append(conn)
                    keep = True
        if not keep:
            with suppress(sqlite3.Error):
                conn.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Transaction]:
        with self._connection() as conn, _translated():
            conn.execute(begin)
            yield _SQLiteTransaction(conn, self.tenant)
            conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        # One writer at a time in this process: a waiting thread wakes as soon
        # as the lock is free, where SQLite's busy handler would sleep and poll.
        # Writers in other processes still meet at SQLite's lock (busy_timeout).
        if not self._writer.acquire(timeout=self._busy_timeout):
            raise StoreUnavailableError("another writer held the database past the busy timeout")
        try:
            with self._transaction("BEGIN IMMEDIATE") as transaction:
                yield transaction
        finally:
            self._writer.release()

    def _read(self) -> Any:
        return self._transaction("BEGIN")

    def _close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _applied_version(self, conn: sqlite3.Connection) -> int:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (migrations.VERSION_TABLE,),
        ).fetchone()
        if has_table is None:
            marks = ",".join("?" * len(migrations.OUR_TABLES))
            foreign = conn.execute(
                f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})",
                migrations.OUR_TABLES,
            ).fetchall()
            if foreign:
                names = ", ".join(sorted(row[0] for row in foreign))
                raise SchemaVersionError(
                    f"{str(self.file)!r} has tables named like eventlog's ({names}) but no "
                    f"{migrations.VERSION_TABLE}: it belongs to another application"
                )
            return 0
        (applied,) = conn.execute(
            f"SELECT coalesce(max(version), 0) FROM {migrations.VERSION_TABLE}"
        ).fetchone()
        return int(applied)

    def _check_schema(self) -> None:
        with self._connection() as conn, _translated():
            applied = self._applied_version(conn)
        migrations.check_current("sqlite", applied, how_to_migrate="run `eventlog migrate`")

    def migrate(self) -> list[int]:
        """Apply pending schema migrations; returns the versions applied."""
        with self._connection() as conn, _translated():
            conn.execute("BEGIN IMMEDIATE")
            plan = migrations.plan_migrations(
                "sqlite",
                self._applied_version(conn),
                version_table_sql=_VERSION_TABLE_SQL,
                record_sql=_RECORD_MIGRATION_SQL,
                record_params=lambda step: (
                    step.version,
                    step.name,
                    _to_micros(datetime.now(UTC)),
                ),
            )
            for statement, params in plan.statements:
                conn.execute(statement, params)
            conn.execute("COMMIT")
        if plan.versions:
            logger.info("migrate", backend="sqlite", applied=plan.versions)
        return plan.versions


class AsyncSQLiteStore(ThreadedAsyncStore):
    """The async twin of `SQLiteStore`: one writer thread, a few reader threads.

    Takes the same arguments as `SQLiteStore`; open it with `connect_async`,
    which runs the blocking open (and migration) off the event loop.
    """

    def __init__(self, path: str | Path, **options: Any) -> None:
        super().__init__(SQLiteStore(path, **options))
