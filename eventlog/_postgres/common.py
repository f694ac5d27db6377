"""What the sync and async Postgres drivers share: SQL, row mapping, error translation.

Nothing here does IO; `driver_async.py` (hand-written) and
`driver.py` (generated from it) run these statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict

from .._core.records import Record, SessionState
from .._sql import catalogue, migrations
from .._sql.catalogue import (
    DELETE_SESSION_SQL,
    RECORD_COLUMNS,
    RECORDS_AT_SQL,
    STATE_COLUMNS,
    STATE_SQL,
    VERSION_ROW_SQL,
    live_records_sql,
)
from ..errors import (
    CommitOutcomeUnknownError,
    ConcurrencyError,
    CorruptionError,
    EventlogError,
    InvalidConfigError,
    SchemaVersionError,
    StatementCancelledError,
    StoreError,
    StoreUnavailableError,
)

__all__ = [
    "ADVISORY_MIGRATION_KEY",
    "RECORDS_AT_SQL",
    "STATE_SQL",
    "VERSION_ROW_SQL",
    "check_url",
    "migration_statements",
    "plan_migrations",
    "record_from_row",
    "state_from_row",
    "translated",
    "translation",
]

ADVISORY_MIGRATION_KEY: Final = 0x6576656E746C6F67  # "eventlog"


# Reads that only compare digests leave payloads out.
_NO_PAYLOAD = "''::bytea"

STATE_FOR_UPDATE_SQL = STATE_SQL + " FOR UPDATE"
# Locking creators of one new session serialize on this lock (no row exists to
# lock yet), so only one of them plans the creation. It is not what keeps
# creators apart: every creator, optimistic or locking, inserts the index row
# first with ON CONFLICT DO NOTHING (`_postgres.guarded`), and one that finds the row
# made meanwhile writes nothing and runs again.
CREATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# The newest record (live or not) of each of some ids: per id, its live row
# (entries_live_entry_id) and its newest replaced or tombstoned row
# (entries_removed_entry_id, read backwards), the newer of the two. One
# equality lookup per id: an `entry_id = ANY(...)` condition instead becomes a
# filter over the session's index entries in a plan made while the table was
# small, and pooled connections keep plans.
_LATEST_OF_ID = (
    f"SELECT {RECORD_COLUMNS.format(payload=_NO_PAYLOAD)} FROM entries "
    "WHERE session_id = %(sid)s AND entry_id = asked.entry_id AND removed_in_version IS {removed}"
)
LATEST_SQL = (
    "SELECT e.* FROM unnest(%(ids)s::text[]) AS asked(entry_id) CROSS JOIN LATERAL "
    f"(({_LATEST_OF_ID.format(removed='NULL')}) UNION ALL "
    f"({_LATEST_OF_ID.format(removed='NOT NULL')} ORDER BY seq DESC LIMIT 1) "
    "ORDER BY seq DESC LIMIT 1) e"
)
# The index row and the newest records of some ids as one statement (one
# snapshot): a row per record found, or one row of NULL records; none if the
# session does not exist.
STATE_AND_LATEST_SQL = (
    "SELECT {state}, e.* FROM sessions s LEFT JOIN LATERAL ({records}) e ON true "
    "WHERE s.session_id = %(sid)s"
).format(
    state=", ".join(f"s.{column.strip()}" for column in STATE_COLUMNS.split(",")),
    records=LATEST_SQL,
)
STATE_WIDTH = len(STATE_COLUMNS.split(","))
LIVE_WITH_PAYLOADS_SQL = live_records_sql("payload")
LIVE_DIGESTS_SQL = live_records_sql(_NO_PAYLOAD)
# The lock waits for a write in flight; the deletes after it (read committed:
# a fresh snapshot each) then see and remove what that write added. The last
# statement's row count says whether the session existed.
DELETE_SQL = ("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE", *DELETE_SESSION_SQL)
# Settings of every pooled connection. Every statement the store sends reads
# or writes one session through an index that leads with session_id, so a table
# scan is never the right plan. With scans off, a generic plan (one made without
# the parameters' values) is an index lookup of one session whatever the tables
# held when it was made, so the pool uses generic plans only: psycopg prepares a
# statement on its fifth use, and every later call skips the planner (planning
# was about 0.25 ms of a save_delta's server time). The one statement that
# needs its values to plan well (a write that stamps an `= ANY` list of seqs)
# runs in a transaction of its own with a custom plan. A test EXPLAINs each
# statement's plan, on an empty schema and on a long session.
CONNECTION_SETTINGS: Final = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}
CONFIGURE_SQL: Final = (
    "SELECT "
    + ", ".join(
        f"set_config('{name}', '{value}', false)" for name, value in CONNECTION_SETTINGS.items()
    )
    + ", set_config('synchronous_commit', CASE current_setting('synchronous_commit') "
    "WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, false)"
)
READ_BEGIN_SQL = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
WRITE_BEGIN_SQL = "BEGIN"


def state_time(moment: datetime) -> datetime:
    """A timestamptz as an aware UTC datetime."""
    return moment.astimezone(UTC)


def state_from_row(row: Sequence[Any]) -> SessionState:
    """A `SessionState` from a row of `STATE_SQL`."""
    return catalogue.state_from_row(row, time=state_time)


def record_from_row(row: Sequence[Any]) -> Record:
    """A `Record` from a row of the record queries."""
    return Record(*row)


# -- migrations ---------------------------------------------------------------

VERSION_TABLE_SQL = (
    f"CREATE TABLE IF NOT EXISTS {migrations.VERSION_TABLE} (version integer PRIMARY KEY, "
    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
TABLE_EXISTS_SQL = "SELECT to_regclass(%s) IS NOT NULL"
APPLIED_VERSION_SQL = f"SELECT coalesce(max(version), 0) FROM {migrations.VERSION_TABLE}"
RECORD_MIGRATION_SQL = f"INSERT INTO {migrations.VERSION_TABLE} (version, name) VALUES (%s, %s)"
_PARTITIONED = re.compile(r"CREATE TABLE (\w+) \(.*?\) \{partition_by\};", re.S)


def migration_statements(sql: str, partitions: int | None) -> list[str]:
    """A schema file as statements, hash-partitioned by session_id when asked."""
    tables = _PARTITIONED.findall(sql)
    clause = "PARTITION BY HASH (session_id)" if partitions else ""
    statements = migrations.split_statements(sql.replace("{partition_by}", clause))
    for table in tables if partitions else ():
        statements += [
            f"CREATE TABLE {table}_p{n} PARTITION OF {table} "
            f"FOR VALUES WITH (MODULUS {partitions}, REMAINDER {n})"
            for n in range(partitions or 0)
        ]
    return statements


def plan_migrations(applied: int, partitions: int | None) -> migrations.MigrationPlan:
    """What migrating a database at version `applied` runs."""
    return migrations.plan_migrations(
        "postgres",
        applied,
        version_table_sql=VERSION_TABLE_SQL,
        record_sql=RECORD_MIGRATION_SQL,
        record_params=lambda step: (step.version, step.name),
        split=lambda sql: migration_statements(sql, partitions),
    )


def foreign_tables_error(found: Sequence[str]) -> SchemaVersionError:
    names = ", ".join(found)
    return SchemaVersionError(
        f"the database has tables named like eventlog's ({names}) but no "
        f"{migrations.VERSION_TABLE}: it belongs to another application; use another database "
        "or schema (e.g. options=-csearch_path=eventlog in the URL)"
    )


# -- errors -------------------------------------------------------------------


_NUMERIC_OPTIONS: Final = ("port", "connect_timeout", "keepalives_idle", "keepalives_count")


# Quoted text libpq's parse errors may keep: the URL punctuation it names.
_SHOWN_QUOTED: Final = frozenset({"=", "]", ":", "/"})


def _parse_reason(exc: psycopg.ProgrammingError) -> str:
    """libpq's reason for rejecting a URL, without any URL text it quotes.

    libpq quotes the offending token or the whole URI (after ``: ``), which may
    hold the password, and the quoted text may itself hold quotes. So the
    wording is kept up to the first quoted part that is not one of libpq's own
    punctuation marks, and nothing after it.
    """
    lines = str(exc).strip().splitlines()
    parts = (lines[0] if lines else "").split('"')
    kept = [parts[0]]
    for index in range(1, len(parts)):
        if index % 2 and (parts[index] not in _SHOWN_QUOTED or kept[-1].endswith(": ")):
            kept.append('"..."')
            break
        kept.append(f'"{parts[index]}"' if index % 2 else parts[index])
    reason = "".join(kept).removesuffix(': "..."').strip()
    return reason or "malformed"


def check_url(url: str) -> dict[str, Any]:
    """Parse a conninfo URL; a malformed one, or a non-numeric port or timeout, is an
    `InvalidConfigError` (libpq would only say so when connecting). No message
    carries any part of the URL (it may hold a password)."""
    # A lone surrogate (argv that was not UTF-8) cannot be handed to libpq; checked
    # without a handler, so no chained UnicodeEncodeError carries the URL.
    if any("\ud800" <= char <= "\udfff" for char in url):
        raise InvalidConfigError("the PostgreSQL URL is not valid UTF-8")
    reason = None
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = _parse_reason(exc)
    if reason is not None:
        # Raised outside the handler: no chained psycopg error holding the URL.
        raise InvalidConfigError(f"the PostgreSQL URL is not valid: {reason}")
    for name in _NUMERIC_OPTIONS:
        value = params.get(name)
        # A port may be a comma-separated list, one per host.
        if value is not None and not all(
            part.strip().lstrip("-").isdigit() for part in str(value).split(",")
        ):
            raise InvalidConfigError(f"the PostgreSQL URL's {name} must be a number")
    if "@" in str(params.get("host", "")):
        # An unencoded @ in the password ends it early: the rest became the host,
        # and libpq's "could not translate host name" would show that part.
        raise InvalidConfigError(
            "the PostgreSQL URL's host holds an @: percent-encode @ in a password as %40"
        )
    return params


def _server_reason(exc: BaseException) -> str:
    # The first line of libpq's message names the cause (host, auth, database);
    # it never holds a password or row values (those are in DETAIL, not used).
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# Keyed by SQLSTATE, as psycopg's errors.lookup is: never by message text.
_CANCEL_REASONS: Final = {
    pg_errors.QueryCanceled.sqlstate: "a statement timeout or a cancel request",
    pg_errors.LockNotAvailable.sqlstate: "a lock timeout",
}


def translation(
    exc: psycopg.Error, session_id: str | None = None, *, committing: bool = False
) -> EventlogError:
    """The eventlog error for a psycopg error, chosen by its class (so by SQLSTATE).

    Args:
        committing: the statement was COMMIT; a lost connection there leaves the
            outcome unknown.
    """
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StoreUnavailableError(
            "no database connection became free within the pool timeout", session_id=session_id
        )
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return ConcurrencyError(
            "the write conflicted with a concurrent one; retry it", session_id=session_id
        )
    code = exc.sqlstate
    if isinstance(exc, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
        # OperationalErrors, but the connection is fine and nothing landed: the
        # statement's transaction aborted. That holds in a COMMIT too: the server
        # takes no cancel once the commit record is written (a cancelled wait for
        # a synchronous standby is only a warning).
        reason = _CANCEL_REASONS.get(code or "", "cancelled")
        return StatementCancelledError(
            f"the database cancelled the statement ({reason}, SQLSTATE {code}); "
            "nothing was written and retrying is safe",
            session_id=session_id,
            sqlstate=code,
        )
    kind: type[StoreError] = StoreError
    message = f"PostgreSQL failed: {type(exc).__name__} (SQLSTATE {code or '-'})"
    if isinstance(exc, pg_errors.IntegrityError):
        kind, message = CorruptionError, f"a stored invariant was violated ({type(exc).__name__})"
    elif isinstance(exc, psycopg.OperationalError) and committing:
        kind = CommitOutcomeUnknownError
        message = (
            "the connection was lost while committing; the write may or may not have "
            "landed, and retrying it is safe"
        )
    elif isinstance(exc, psycopg.OperationalError):
        kind, message = StoreUnavailableError, f"the database is unavailable: {_server_reason(exc)}"
    return kind(message, session_id=session_id, code=code)


@contextmanager
def translated(session_id: str | None = None, *, committing: bool = False) -> Iterator[None]:
    """Turn psycopg errors raised in the block into eventlog errors (see `translation`);
    messages never carry row values."""
    try:
        yield
    except EventlogError:
        raise
    except psycopg.Error as exc:
        raise translation(exc, session_id, committing=committing) from None


def connect_error(exc: psycopg.Error) -> StoreUnavailableError:
    """A clear error for a failed first connection: what to fix."""
    return StoreUnavailableError(
        f"cannot connect to PostgreSQL: {_server_reason(exc)}", code=exc.sqlstate
    )
