"""The SQL the Postgres driver runs for reads and writes, and its row mapping.

Nothing here does IO; `driver_async.py` (hand-written) and `driver.py`
(generated from it) run these statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from psycopg import sql as pgsql

from .._core.records import Record, SessionState
from .._sql import catalogue
from .._sql.catalogue import (
    DELETE_SESSION_SQL,
    LIVE_RECORD_SQL,
    RECORD_COLUMNS,
    RECORDS_AT_SQL,
    STATE_COLUMNS,
    STATE_SQL,
    VERSION_ROW_SQL,
    branch_tail_sql,
    live_records_sql,
)

__all__ = [
    "BRANCH_TAIL_SQL",
    "CREATION_LOCK_SQL",
    "DELETE_SQL",
    "LATEST_SQL",
    "LIVE_DIGESTS_SQL",
    "LIVE_RECORD_SQL",
    "LIVE_WITH_PAYLOADS_SQL",
    "READ_BEGIN_SQL",
    "RECORDS_AT_SQL",
    "SET_TENANT_CUSTOM_PLAN_SQL",
    "SET_TENANT_SQL",
    "STATE_AND_LATEST_SQL",
    "STATE_FOR_UPDATE_SQL",
    "STATE_SQL",
    "STATE_WIDTH",
    "TENANT_PREFIX",
    "VERSION_ROW_SQL",
    "WRITE_BEGIN_SQL",
    "record_from_row",
    "state_from_row",
    "state_time",
    "tenant_setting",
]


# Reads that only compare digests leave payloads out.
_NO_PAYLOAD = "''::bytea"

STATE_FOR_UPDATE_SQL = STATE_SQL + " FOR UPDATE"
BRANCH_TAIL_SQL = branch_tail_sql(lateral=True)
# Locking creators of one new session serialize on this lock (no row exists to
# lock yet), so only one of them plans the creation. It is not what keeps
# creators apart: every creator, optimistic or locking, inserts the index row
# first with ON CONFLICT DO NOTHING (`_postgres.guarded`), and one that finds the row
# made meanwhile writes nothing and runs again.
# Its key hashes the tenant and the session id (parameters: tenant, session id).
CREATION_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended(%s || '/' || %s, 0))"
# The newest record (live or not) of each of some ids: per id, its live row
# (entries_live_entry_id) and its newest replaced or tombstoned row
# (entries_removed_entry_id, read backwards), the newer of the two. One
# equality lookup per id: an `entry_id = ANY(...)` condition instead becomes a
# filter over the session's index entries in a plan made while the table was
# small, and pooled connections keep plans.
_LATEST_OF_ID = (
    f"SELECT {RECORD_COLUMNS.format(payload=_NO_PAYLOAD)} FROM entries "
    "WHERE tenant = %(tenant)s AND session_id = %(sid)s AND entry_id = asked.entry_id "
    "AND removed_in_version IS {removed}"
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
    "WHERE s.tenant = %(tenant)s AND s.session_id = %(sid)s"
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
# Parameters of each: tenant, session id.
DELETE_SQL = (
    "SELECT 1 FROM sessions WHERE tenant = %s AND session_id = %s FOR UPDATE",
    *DELETE_SESSION_SQL,
)

READ_BEGIN_SQL = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
# The tenant of the transaction, which the row-level security policies compare
# with (schema/postgres/0004_tenants.sql): transaction-local (`true`), so it ends
# with the transaction and a pooled connection never carries it to its next
# borrower; prefixed with 't:' so an unset setting matches no tenant.
TENANT_PREFIX = "t:"
SET_TENANT_SQL = f"SELECT set_config('eventlog.tenant', '{TENANT_PREFIX}' || %s, true)"
# The same, and a custom plan for the transaction's one statement (see
# `guarded`: a write that stamps removals).
SET_TENANT_CUSTOM_PLAN_SQL = (
    f"SELECT set_config('eventlog.tenant', '{TENANT_PREFIX}' || %s, true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)
# On distributed tables the policies run on the workers, which never see a
# set_config of the coordinator: Citus passes on only SET LOCAL commands, and
# only inside a transaction block (with `citus.propagate_set_commands = local`,
# a setting of the distributed pool). SET takes no parameter, so the value goes
# as a quoted literal.
_SET_TENANT_LOCAL = pgsql.SQL("SET LOCAL eventlog.tenant = {}")


def tenant_setting(
    tenant: str, *, distributed: bool, custom_plan: bool = False
) -> tuple[str | pgsql.Composed, tuple[str, ...] | None]:
    """The statement (and its parameters) that sets the tenant for one transaction.

    Args:
        distributed: the tables are distributed (Citus): SET LOCAL, which must
            run inside BEGIN ... COMMIT.
        custom_plan: plain PostgreSQL only: plan the transaction's statement for
            its values (see `guarded`).
    """
    if distributed:
        return _SET_TENANT_LOCAL.format(pgsql.Literal(f"{TENANT_PREFIX}{tenant}")), None
    return (SET_TENANT_CUSTOM_PLAN_SQL if custom_plan else SET_TENANT_SQL), (tenant,)


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
