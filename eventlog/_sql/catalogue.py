"""The statement catalogue: the SQL the SQLite and Postgres drivers share.

Column lists and row mapping, the reads both dialects write alike, the
`list_sessions` query and the statements that apply a `WritePlan` or a
`PurgePlan`. Written with psycopg's ``%s`` placeholder; `qmark` gives sqlite3's.
Where the dialects differ (an empty blob literal, a blob's length, locking) the
caller passes its dialect's text, and statements only one backend has live
with its driver.

Pure: it builds statements and parameter rows; the drivers run them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

from .._core.planning import PurgePlan, WritePlan
from .._core.records import BranchWalk, Record, SessionState, StateQuery
from ..errors import CorruptionError
from .id_ranges import prefix_successor

__all__ = [
    "CHANGES_ADDED_SQL",
    "CHANGES_REMOVED_SQL",
    "CHANGES_VERSIONS_SQL",
    "DELETE_SESSION_SQL",
    "LIVE_ENTRIES_SQL",
    "LIVE_RECORD_SQL",
    "RECORDS_AT_SQL",
    "RECORD_COLUMNS",
    "SESSION_FIELDS",
    "SET_DATA_KEY_SQL",
    "STATE_COLUMNS",
    "STATE_SQL",
    "UPDATED_SESSION_FIELDS",
    "VERSION_ROW_SQL",
    "Statement",
    "branch_tail_params",
    "branch_tail_sql",
    "branch_walk_from_rows",
    "entry_row",
    "list_states_sql",
    "live_records_sql",
    "named_qmark",
    "newest_by_id",
    "plan_statements",
    "purge_statements",
    "qmark",
    "scan_sql",
    "session_set_clause",
    "session_values",
    "state_from_row",
    "version_row_params",
]

Statement: TypeAlias = tuple[str, list[tuple[Any, ...]]]

STATE_COLUMNS = (
    "session_id, version, leaf_id, metadata, next_seq, entry_count, removed_count, bytes, "
    "history_floor, created_at, updated_at, parent_session_id, forked_from_entry_id, data_key"
)
# In `Record` field order; {payload} is the payload column, or an empty literal
# for reads that only compare digests.
RECORD_COLUMNS = (
    "seq, pos, entry_id, parent_id, kind, ts, {payload}, digest, added_in_version, "
    "removed_in_version"
)


STATE_SQL = f"SELECT {STATE_COLUMNS} FROM sessions WHERE tenant = %s AND session_id = %s"
# The live rows of one session in `pos` order. `pos >= 0` (always true) matches
# the predicate of Postgres's entries_live_pos.
_LIVE_SQL = (
    "SELECT {columns} FROM entries "
    "WHERE tenant = %s AND session_id = %s AND removed_in_version IS NULL AND pos >= 0 "
    "ORDER BY pos"
)
# The live entries, as `planning.entries_from_rows` reads them.
LIVE_ENTRIES_SQL = _LIVE_SQL.format(columns="entry_id, parent_id, kind, ts, payload")
RECORDS_AT_SQL = (
    f"SELECT {RECORD_COLUMNS.format(payload='payload')} FROM entries "
    "WHERE tenant = %s AND session_id = %s AND added_in_version <= %s "
    "AND (removed_in_version IS NULL OR removed_in_version > %s) ORDER BY pos"
)
# A version's leaf and write time, and the metadata as of it: the newest
# version row up to it that carries metadata. The subquery names the session
# itself (not only through `v`): Citus routes a statement to one shard only when
# every table in it is filtered by the distribution column's value, and a
# subquery correlated on `v.session_id` alone fans out to every shard.
# Parameters: `version_row_params`.
VERSION_ROW_SQL = (
    "SELECT leaf_id, created_at, (SELECT metadata FROM session_versions m "
    "WHERE m.tenant = %s AND m.session_id = %s AND m.version <= v.version "
    "AND m.metadata IS NOT NULL ORDER BY m.version DESC LIMIT 1) FROM session_versions v "
    "WHERE v.tenant = %s AND v.session_id = %s AND v.version = %s"
)


def version_row_params(tenant: str, session_id: str, version: int) -> tuple[Any, ...]:
    """The parameters of `VERSION_ROW_SQL`, in its placeholders' order."""
    return (tenant, session_id, tenant, session_id, version)


# -- reads for frameworks: each answered from the live-id index ----------------

_PAYLOAD_RECORD_COLUMNS = RECORD_COLUMNS.format(payload="payload")
# The live record of one id (parameters: tenant, session id, entry id).
LIVE_RECORD_SQL = (
    f"SELECT {_PAYLOAD_RECORD_COLUMNS} FROM entries "
    "WHERE tenant = %s AND session_id = %s AND entry_id = %s AND removed_in_version IS NULL"
)
_WALK_COLUMNS = ", ".join(f"w.{column.strip()}" for column in _PAYLOAD_RECORD_COLUMNS.split(","))
_STEP_COLUMNS = ", ".join(f"e.{column.strip()}" for column in _PAYLOAD_RECORD_COLUMNS.split(","))


def branch_tail_sql(*, lateral: bool) -> str:
    """A walk up from a leaf, one live record a step through the live-id index.

    The walk starts at the given leaf, else the session's, and takes at most a
    limit of steps; one row more says whether the session exists. Parameters:
    `branch_tail_params`.
    Rows: exists, then a record's columns (all NULL when the walk found
    nothing), leaf first.

    Args:
        lateral: look each parent up in a LATERAL subquery (Postgres). As a
            plain join, a plan made on a small table reads every live row of the
            session at each step; the subquery leaves the planner only the
            equality lookup (LIMIT 1, true of a live id, keeps the planner from
            flattening it into the join). SQLite has no LATERAL and looks parents
            up by key.
    """
    live_of = "e.tenant = %s AND e.session_id = %s AND e.removed_in_version IS NULL"
    if lateral:
        step = (
            f"FROM walk w CROSS JOIN LATERAL (SELECT {_STEP_COLUMNS} FROM entries e "
            f"WHERE {live_of} AND e.entry_id = w.parent_id LIMIT 1) e"
        )
    else:
        step = f"FROM walk w JOIN entries e ON {live_of} AND e.entry_id = w.parent_id"
    return (
        f"WITH RECURSIVE walk(depth, {_PAYLOAD_RECORD_COLUMNS}) AS ("
        f"SELECT 1, {_STEP_COLUMNS} FROM entries e WHERE {live_of} "
        "AND e.entry_id = (SELECT COALESCE(%s, "
        "(SELECT leaf_id FROM sessions WHERE tenant = %s AND session_id = %s))) "
        f"UNION ALL SELECT w.depth + 1, {_STEP_COLUMNS} {step} WHERE w.depth < %s) "
        f"SELECT s.session_id IS NOT NULL, {_WALK_COLUMNS} "
        "FROM (SELECT 1 AS one) o LEFT JOIN sessions s ON s.tenant = %s AND s.session_id = %s "
        "LEFT JOIN walk w ON 1 = 1 ORDER BY w.depth"
    )


def branch_tail_params(
    tenant: str, session_id: str, leaf_id: str | None, limit: int
) -> tuple[Any, ...]:
    """The parameters of `branch_tail_sql`, in its placeholders' order."""
    key = (tenant, session_id)
    return (*key, leaf_id, *key, *key, limit, *key)


def branch_walk_from_rows(rows: Sequence[Sequence[Any]]) -> BranchWalk:
    """The `BranchWalk` that the rows of `BRANCH_TAIL_SQL` stand for."""
    exists = bool(rows[0][0])
    records = [Record(*row[1:]) for row in rows if row[1] is not None]
    return BranchWalk(exists=exists, records=records)


def scan_sql(
    tenant: str,
    session_id: str,
    id_prefix: str,
    after_id: str | None,
    limit: int | None,
    *,
    paramstyle: str,
) -> tuple[str, list[Any]]:
    """The live records of one session by id range, in id order, and the parameters.

    Ids compare by code point (Postgres: COLLATE "C"; SQLite: BINARY over
    UTF-8), so the ids that start with a prefix are one range of the live-id
    index: from the prefix up to its successor.

    The range has one lower bound: `after_id` when it is at or above the prefix
    (Python compares str by code point too), else the prefix. Given both, SQLite
    seeks by one only, and by the prefix a page deep in the range would step
    over every id before it.
    """
    sql = [
        f"SELECT {_PAYLOAD_RECORD_COLUMNS} FROM entries "
        "WHERE tenant = %s AND session_id = %s AND removed_in_version IS NULL"
    ]
    params: list[Any] = [tenant, session_id]
    if after_id is not None and after_id >= id_prefix:
        sql.append("AND entry_id > %s")
        params.append(after_id)
    else:
        sql.append("AND entry_id >= %s")
        params.append(id_prefix)
    upper = prefix_successor(id_prefix)
    if upper is not None:
        sql.append("AND entry_id < %s")
        params.append(upper)
    sql.append("ORDER BY entry_id")
    if limit is not None:
        sql.append("LIMIT %s")
        params.append(limit)
    return " ".join(sql).replace("%s", paramstyle), params


# Every row of one session (parameters: tenant, session id); the last
# statement's row count says whether it existed.
# A rekey: the wrapped data key replaced only if it is still the one read
# (parameters: new key, tenant, session id, key read).
SET_DATA_KEY_SQL = (
    "UPDATE sessions SET data_key = %s WHERE tenant = %s AND session_id = %s AND data_key = %s"
)
DELETE_SESSION_SQL = (
    "DELETE FROM entries WHERE tenant = %s AND session_id = %s",
    "DELETE FROM session_versions WHERE tenant = %s AND session_id = %s",
    "DELETE FROM sessions WHERE tenant = %s AND session_id = %s",
)


def qmark(sql: str) -> str:
    """A catalogue statement with sqlite3's ``?`` placeholders."""
    return sql.replace("%s", "?")


def live_records_sql(payload: str) -> str:
    """The live records of one session in `pos` order (parameters: tenant, session id).

    Args:
        payload: the payload column, or the dialect's empty blob for reads that
            only compare digests.
    """
    return _LIVE_SQL.format(columns=RECORD_COLUMNS.format(payload=payload))


# The index row's columns an UPDATE by a write sets, in `session_values` order.
UPDATED_SESSION_FIELDS = (
    "version",
    "leaf_id",
    "metadata",
    "next_seq",
    "entry_count",
    "removed_count",
    "bytes",
    "history_floor",
    "created_at",
    "updated_at",
    "parent_session_id",
    "forked_from_entry_id",
)
# The columns a creation inserts (`session_values` order), and an UPDATE may set:
# a sealed session's wrapped data key is written when the session is created,
# and changed only by `rekey` (so a write read before a concurrent rekey cannot
# put back the key it rewrapped, and a role granted before schema 5 still writes).
SESSION_FIELDS = (*UPDATED_SESSION_FIELDS, "data_key")


def session_set_clause(placeholder: Callable[[str], str]) -> str:
    """`SET` of every `UPDATED_SESSION_FIELDS` column, as an UPDATE of the index row writes them.

    A metadata value of NULL keeps the stored metadata: a write that does not
    change it does not send it, and the server does not write it again (on
    Postgres a large value stays in TOAST untouched, so a turn's WAL does not
    grow with the metadata's size).
    """
    return ", ".join(
        f"{name} = coalesce({placeholder(name)}, {name})"
        if name == "metadata"
        else f"{name} = {placeholder(name)}"
        for name in UPDATED_SESSION_FIELDS
    )


def session_values(
    state: SessionState,
    *,
    time: Callable[[datetime], Any],
    metadata: bool = True,
    creating: bool = True,
) -> tuple[Any, ...]:
    """The values of `SESSION_FIELDS` for `state` (`UPDATED_SESSION_FIELDS` unless
    `creating`); `time` stores a datetime.

    `metadata=False` gives None for the metadata: for an UPDATE that keeps it
    (see `session_set_clause`).
    """
    updated = (
        state.version,
        state.leaf_id,
        state.metadata if metadata else None,
        state.next_seq,
        state.entry_count,
        state.removed_count,
        state.bytes,
        state.history_floor,
        time(state.created_at),
        time(state.updated_at),
        state.parent_session_id,
        state.forked_from_entry_id,
    )
    return (*updated, state.data_key) if creating else updated


def newest_by_id(records: Iterable[Record]) -> dict[str, Record]:
    """The record with the highest seq of each entry id."""
    newest: dict[str, Record] = {}
    for record in records:
        found = newest.get(record.entry_id)
        if found is None or record.seq > found.seq:
            newest[record.entry_id] = record
    return newest


def state_from_row(row: Sequence[Any], *, time: Callable[[Any], datetime]) -> SessionState:
    """A `SessionState` from a row of `STATE_COLUMNS`; `time` reads a stored time.

    Raises:
        CorruptionError: the row does not hold what the schema says (SQLite keeps
            any type in any column, so a row edited outside eventlog may not).
    """
    try:
        if not all(type(value) is int for value in row[4:9]) or type(row[1]) is not int:
            raise TypeError
        return SessionState(
            session_id=row[0],
            version=row[1],
            leaf_id=row[2],
            metadata=bytes(row[3]),
            next_seq=row[4],
            entry_count=row[5],
            removed_count=row[6],
            bytes=row[7],
            history_floor=row[8],
            created_at=time(row[9]),
            updated_at=time(row[10]),
            parent_session_id=row[11],
            forked_from_entry_id=row[12],
            data_key=None if row[13] is None else bytes(row[13]),
        )
    except (TypeError, ValueError, OverflowError, OSError):
        pass
    session_id = row[0] if isinstance(row[0], str) else None
    raise CorruptionError(
        "the stored session row is damaged (edited outside eventlog?)", session_id=session_id
    )


def list_states_sql(
    tenant: str, query: StateQuery, *, paramstyle: str, time: Callable[[datetime], Any]
) -> tuple[str, list[Any]]:
    """The `list_sessions` query: the only statement not bound to one session (one tenant's)."""
    prefix, updated_before, after, limit = (
        query.prefix,
        query.updated_before,
        query.after,
        query.limit,
    )
    clauses: list[str] = ["tenant = %s"]
    params: list[Any] = [tenant]
    if prefix:
        clauses.append("session_id >= %s")
        params.append(prefix)
        upper = prefix_successor(prefix)
        if upper is not None:
            clauses.append("session_id < %s")
            params.append(upper)
    if after is not None:
        clauses.append("session_id > %s")
        params.append(after)
    if updated_before is not None:
        clauses.append("updated_at < %s")
        params.append(time(updated_before))
    where = f"WHERE {' AND '.join(clauses)}"
    sql = f"SELECT {STATE_COLUMNS} FROM sessions {where} ORDER BY session_id LIMIT %s"
    return sql.replace("%s", paramstyle), [*params, limit]


def entry_row(tenant: str, session_id: str, record: Record) -> tuple[Any, ...]:
    """One appended record's values, in the order of the entries table's insert columns
    (tenant, session_id, seq, pos, entry_id, parent_id, kind, ts, payload, digest,
    added_in_version)."""
    return (
        tenant,
        session_id,
        record.seq,
        record.pos,
        record.entry_id,
        record.parent_id,
        record.kind,
        record.timestamp,
        record.payload,
        record.digest,
        record.added_in_version,
    )


def plan_statements(
    plan: WritePlan, *, tenant: str, paramstyle: str, time: Callable[[datetime], Any]
) -> list[Statement]:
    """The statements (each with its parameter rows) that apply a write plan, in order.

    Args:
        tenant: the tenant whose session the plan writes.
        paramstyle: the driver's placeholder, ``?`` (sqlite3) or ``%s`` (psycopg).
        time: how the backend stores a datetime.
    """
    sql = _write_sql(paramstyle)
    state = plan.state
    sid = state.session_id
    statements: list[Statement] = []
    if plan.removals:
        statements.append(
            (sql.tombstone, [(state.version, tenant, sid, seq) for seq in plan.removals])
        )
    if plan.appends:
        statements.append((sql.append, [entry_row(tenant, sid, r) for r in plan.appends]))
    if plan.creates:
        statements.append((sql.create, [(*session_values(state, time=time), tenant, sid)]))
    else:
        values = session_values(state, time=time, metadata=plan.metadata_changed, creating=False)
        statements.append((sql.update, [(*values, tenant, sid)]))
    statements.append(
        (
            sql.version_row,
            [
                (
                    tenant,
                    sid,
                    state.version,
                    state.leaf_id,
                    state.metadata if plan.metadata_changed else None,
                    time(state.updated_at),
                )
            ],
        )
    )
    return statements


class _WriteSQL(NamedTuple):
    """The texts of `plan_statements`, in one driver's placeholders."""

    tombstone: str
    append: str
    create: str
    update: str
    version_row: str


@functools.cache
def _write_sql(paramstyle: str) -> _WriteSQL:
    # Built once per placeholder style: a write runs these on every call.
    texts = _WriteSQL(
        "UPDATE entries SET removed_in_version = %s "
        "WHERE tenant = %s AND session_id = %s AND seq = %s",
        "INSERT INTO entries (tenant, session_id, seq, pos, entry_id, parent_id, kind, "
        "ts, payload, digest, added_in_version) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        f"INSERT INTO sessions ({', '.join(SESSION_FIELDS)}, tenant, session_id) "
        f"VALUES ({', '.join(['%s'] * (len(SESSION_FIELDS) + 2))})",
        f"UPDATE sessions SET {session_set_clause(lambda _: '%s')} "
        "WHERE tenant = %s AND session_id = %s",
        "INSERT INTO session_versions (tenant, session_id, version, leaf_id, metadata, "
        "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
    )
    if paramstyle == "%s":
        return texts
    return _WriteSQL(*(text.replace("%s", paramstyle) for text in texts))


def purge_statements(
    plan: PurgePlan, *, tenant: str, paramstyle: str, length: str
) -> list[Statement]:
    """The statements that apply a purge plan, in order; the first one's row count
    is the number of records dropped.

    Args:
        tenant: the tenant whose session is purged.
        paramstyle: the driver's placeholder, ``?`` (sqlite3) or ``%s`` (psycopg).
        length: the dialect's byte length of a blob, ``length`` (SQLite) or
            ``octet_length`` (PostgreSQL).
    """
    sid = plan.session_id
    statements: list[Statement] = [
        (
            "DELETE FROM entries "
            "WHERE tenant = %s AND session_id = %s AND removed_in_version IS NOT NULL",
            [(tenant, sid)],
        ),
        (
            "DELETE FROM session_versions WHERE tenant = %s AND session_id = %s AND version < %s",
            [(tenant, sid, plan.floor)],
        ),
        (
            "UPDATE session_versions SET metadata = %s "
            "WHERE tenant = %s AND session_id = %s AND version = %s",
            [(plan.metadata, tenant, sid, plan.floor)],
        ),
        (
            "UPDATE sessions SET removed_count = %s, history_floor = %s, bytes = "
            f"(SELECT coalesce(sum({length}(payload) - %s), 0) FROM entries "
            "WHERE tenant = %s AND session_id = %s) "
            "WHERE tenant = %s AND session_id = %s",
            [(plan.removed_count, plan.floor, plan.overhead, tenant, sid, tenant, sid)],
        ),
    ]
    return [(sql.replace("%s", paramstyle), rows) for sql, rows in statements]


# -- the change feed ------------------------------------------------------------
#
# Named parameters: tenant, sid, after, until, next_seq (psycopg's %(name)s; `named_qmark`
# gives sqlite3's :name).
#
# There is no index on added_in_version (an append would write it), but versions
# are written one at a time per session and seqs grow, so added_in_version never
# falls with seq: the first seq of the versions after v is found by a binary
# search over the primary key (session_id, seq), O(log n) index probes in one
# statement. `_FIRST_ABOVE` is the probe: whether the first record at or after
# seq `mid` (there may be gaps: purge deletes rows) was added after version `v`,
# or there is none. Both bounds, after `after` (k = 0) and after `until`
# (k = 1), are searched in one recursive CTE.
_MID = "((b.lo + b.hi) / 2)"
_FIRST_ABOVE = (
    "coalesce((SELECT e.added_in_version > b.v FROM entries e "
    "WHERE e.tenant = %(tenant)s AND e.session_id = %(sid)s "
    f"AND e.seq >= {_MID} ORDER BY e.seq LIMIT 1), TRUE)"
)
CHANGES_ADDED_SQL = (
    "WITH RECURSIVE b(k, v, lo, hi) AS ("
    "SELECT 0, CAST(%(after)s AS BIGINT), CAST(0 AS BIGINT), CAST(%(next_seq)s AS BIGINT) "
    "UNION ALL "
    "SELECT 1, CAST(%(until)s AS BIGINT), CAST(0 AS BIGINT), CAST(%(next_seq)s AS BIGINT) "
    "UNION ALL "
    f"SELECT b.k, b.v, CASE WHEN {_FIRST_ABOVE} THEN b.lo ELSE {_MID} + 1 END, "
    f"CASE WHEN {_FIRST_ABOVE} THEN {_MID} ELSE b.hi END "
    "FROM b WHERE b.lo < b.hi) "
    f"SELECT {RECORD_COLUMNS.format(payload='payload')} FROM entries "
    "WHERE tenant = %(tenant)s AND session_id = %(sid)s "
    "AND seq >= (SELECT lo FROM b WHERE k = 0 AND lo >= hi) "
    "AND seq < (SELECT lo FROM b WHERE k = 1 AND lo >= hi) ORDER BY seq"
)
# The records removed in (after, until]: from the partial index
# entries_removed_version, which only a tombstone or a supersede writes;
# `removed_in_version > 0` (always true) matches its predicate.
CHANGES_REMOVED_SQL = (
    "SELECT entry_id, removed_in_version FROM entries "
    "WHERE tenant = %(tenant)s AND session_id = %(sid)s AND removed_in_version > 0 "
    "AND removed_in_version > %(after)s AND removed_in_version <= %(until)s "
    "ORDER BY removed_in_version, seq"
)
CHANGES_VERSIONS_SQL = (
    "SELECT version, leaf_id, metadata, created_at FROM session_versions "
    "WHERE tenant = %(tenant)s AND session_id = %(sid)s AND version > %(after)s "
    "AND version <= %(until)s "
    "ORDER BY version"
)


def named_qmark(sql: str) -> str:
    """A catalogue statement with psycopg's ``%(name)s`` as sqlite3's ``:name``."""
    return re.sub(r"%\((\w+)\)s", r":\1", sql)
