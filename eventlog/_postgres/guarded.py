"""The optimistic write on Postgres: a `WritePlan` as ONE statement, guarded.

The hot writes (`save_delta`, `save`) read without locks, plan, and then
send everything the plan writes as a single statement in autocommit mode: no
BEGIN, no COMMIT, one round trip. The statement changes the index row only if
it is still the row that was read (same version, same creation time, same
purge floor: every write that touches the session changes one of them), and
each other part of the statement runs only if that change happened. It
returns how many index rows it changed: 0 means another write got there
first, nothing was written, and the caller plans again.

Pure: it builds the statement and its parameters; the drivers run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._core.planning import WritePlan
from .._core.records import Record, SessionState
from .._sql.catalogue import SESSION_FIELDS, entry_row, session_set_clause, session_values
from .arrays import ByteaArray, Int8Array, TextArray
from .citus import WRITE_FUNCTION, WRITE_FUNCTION_ARGUMENTS
from .statements import LATEST_SQL

__all__ = [
    "LOST_RACE_SQLSTATE",
    "delegated_write",
    "guard_sql",
    "guarded_write",
    "routed_write",
]

_INSERT_SESSION = (
    f"INSERT INTO sessions (tenant, session_id, {', '.join(SESSION_FIELDS)}) "
    f"VALUES (%(tenant)s, %(sid)s, {', '.join(f'%({name})s' for name in SESSION_FIELDS)}) "
    "ON CONFLICT (tenant, session_id) DO NOTHING RETURNING 1"
)
_GUARD = (
    "tenant = %(tenant)s AND session_id = %(sid)s AND version = %(read_version)s "
    "AND created_at = %(read_created_at)s AND history_floor = %(read_history_floor)s"
)
_UPDATE_SESSION = (
    f"UPDATE sessions SET {session_set_clause(lambda name: f'%({name})s')} "
    f"WHERE {_GUARD}{{absent}} RETURNING 1"
)
# For a write planned without reading the ids: none of the appended ids
# (`ids`, as the insert below names them) has a record, live or not. The id
# lookup is LATEST_SQL's, one index lookup per id.
_IDS_ABSENT = f" AND NOT EXISTS ({LATEST_SQL})"
# The seqs to stamp bound the key range read: a plan made without statistics
# (which estimate one row for a tenant's session, two equalities of unknown
# selectivity) takes `seq = ANY(...)` as a filter, not as index lookups, so the
# range keeps it from reading the session's whole key range.
_STAMP_REMOVALS = (
    "UPDATE entries SET removed_in_version = %(version)s "
    "WHERE tenant = %(tenant)s AND session_id = %(sid)s "
    "AND seq >= %(first_removal)s AND seq <= %(last_removal)s "
    "AND seq = ANY(%(removals)s::bigint[]) AND EXISTS (SELECT FROM s) RETURNING 1"
)
# Rows replaced in this write are stamped first (`r`), so the new live row of a
# changed entry never meets the old one in the unique index of live ids.
_INSERT_ENTRIES = (
    "INSERT INTO entries (tenant, session_id, seq, pos, entry_id, parent_id, kind, ts, payload, "
    "digest, added_in_version) SELECT %(tenant)s, %(sid)s, a.* "
    "FROM unnest(%(seqs)s::bigint[], %(poss)s::bigint[], "
    "%(ids)s::text[], %(parents)s::text[], %(kinds)s::text[], %(timestamps)s::text[], "
    "%(payloads)b::bytea[], %(digests)b::bytea[], %(added)s::bigint[]) AS a "
    "WHERE EXISTS (SELECT FROM s){after_removals}"
)
_INSERT_VERSION = (
    "INSERT INTO session_versions (tenant, session_id, version, leaf_id, metadata, created_at) "
    "SELECT %(tenant)s, %(sid)s, %(version)s::bigint, %(leaf_id)s::text, "
    "%(version_metadata)s::bytea, %(updated_at)s::timestamptz WHERE EXISTS (SELECT FROM s)"
)


def _append_params(appends: Sequence[Record]) -> dict[str, Any]:
    """The appended records as the column arrays the insert unnests (one per column)."""
    return {
        "seqs": Int8Array([r.seq for r in appends]),
        "poss": Int8Array([r.pos for r in appends]),
        "ids": TextArray([r.entry_id for r in appends]),
        "parents": TextArray([r.parent_id for r in appends]),
        "kinds": TextArray([r.kind for r in appends]),
        "timestamps": TextArray([r.timestamp for r in appends]),
        "payloads": ByteaArray([r.payload for r in appends]),
        "digests": ByteaArray([r.digest for r in appends]),
        "added": Int8Array([r.added_in_version for r in appends]),
    }


def guarded_write(
    plan: WritePlan,
    read: SessionState | None,
    *,
    tenant: str,
    absent: bool = False,
) -> tuple[str, dict[str, Any]]:
    """The statement that applies `plan` if the session is still `read` (None: absent).

    With `absent`, also only if none of the appended ids has a record: for a
    plan made without reading them (`Operation.plan_if_new`). It notifies no
    watcher: the store does once the write landed (`_postgres.notifier`).

    The statement returns one row: the number of index rows written (1 or 0).
    """
    state = plan.state
    params: dict[str, Any] = {"tenant": tenant, "sid": state.session_id}
    # timestamptz parameters take the aware datetimes themselves.
    # Metadata goes only where it is new (see `session_set_clause`).
    values = session_values(
        state, time=lambda moment: moment, metadata=read is None or plan.metadata_changed
    )
    params.update(zip(SESSION_FIELDS, values, strict=True))
    parts: list[str] = []
    if read is None:
        parts.append(f"s AS ({_INSERT_SESSION})")
    else:
        assert plan.appends or not absent, "the absence check reads the appended ids"
        parts.append(f"s AS ({_UPDATE_SESSION.format(absent=_IDS_ABSENT if absent else '')})")
        params.update(guard_params(read, tenant))
    if plan.removals:
        parts.append(f"r AS ({_STAMP_REMOVALS})")
        params["removals"] = Int8Array(plan.removals)
        params["first_removal"] = min(plan.removals)
        params["last_removal"] = max(plan.removals)
    if plan.appends:
        after = " AND (SELECT count(*) FROM r) >= 0" if plan.removals else ""
        parts.append(f"e AS ({_INSERT_ENTRIES.format(after_removals=after)})")
        params.update(_append_params(plan.appends))
    parts.append(f"v AS ({_INSERT_VERSION})")
    params["version_metadata"] = state.metadata if plan.metadata_changed else None
    return f"WITH {', '.join(parts)} SELECT count(*) FROM s", params


def guard_sql(
    session_id: str, read: SessionState | None, tenant: str
) -> tuple[str, dict[str, Any]]:
    """A read that returns 1 if the session is still `read` (None: still absent), else 0."""
    if read is None:
        query = (
            "SELECT (count(*) = 0)::int FROM sessions "
            "WHERE tenant = %(tenant)s AND session_id = %(sid)s"
        )
        return query, {"tenant": tenant, "sid": session_id}
    return f"SELECT count(*) FROM sessions WHERE {_GUARD}", guard_params(read, tenant)


def guard_params(read: SessionState, tenant: str) -> dict[str, Any]:
    """The guard's parameters: what must not have changed since `read`."""
    return {
        "tenant": tenant,
        "sid": read.session_id,
        "read_version": read.version,
        "read_created_at": read.created_at,
        "read_history_floor": read.history_floor,
    }


# -- the same write on Citus ---------------------------------------------------
#
# Citus routes a statement to one shard only if it can plan it for one shard,
# and it never does so for a data-modifying CTE that inserts: it splits such a
# statement into steps and commits them with two-phase commit across workers.
# So on distributed tables the write is a transaction of plain statements, each
# of them single-shard (every table filtered by the session's id), sent in one
# pipeline with BEGIN and COMMIT: still one round trip, and one worker.
#
# The guard cannot make the later statements conditional any more, so it
# aborts the transaction instead: its first statement fails with
# division_by_zero when the session is not as read (an UPDATE that changed no
# row, or an INSERT that met an existing row), and nothing after it runs. The
# statements divide nowhere else; the driver takes exactly that SQLSTATE as a
# lost race. The first statement also takes the index row's lock, which every
# writer takes first, so the statements after it see no other write.
LOST_RACE_SQLSTATE = "22012"
_ROUTED_UPDATE_SESSION = (
    f"WITH s AS ({_UPDATE_SESSION}) SELECT 1 / count(*) FROM s"  # 0 rows: division_by_zero
)
_ROUTED_INSERT_SESSION = (
    f"INSERT INTO sessions (tenant, session_id, {', '.join(SESSION_FIELDS)}) "
    f"VALUES (%(tenant)s, %(sid)s, {', '.join(f'%({name})s' for name in SESSION_FIELDS)}) "
    # An existing row: division_by_zero (a column, so never folded at plan time).
    "ON CONFLICT (tenant, session_id) DO UPDATE SET version = sessions.version / 0"
)
_ROUTED_STAMP_REMOVALS = (
    "UPDATE entries SET removed_in_version = %(version)s "
    "WHERE tenant = %(tenant)s AND session_id = %(sid)s "
    "AND seq >= %(first_removal)s AND seq <= %(last_removal)s "
    "AND seq = ANY(%(removals)s::bigint[])"
)
_ENTRY_COLUMNS = (
    "tenant, session_id, seq, pos, entry_id, parent_id, kind, ts, payload, digest, added_in_version"
)
_ROUTED_INSERT_VERSION = (
    "INSERT INTO session_versions (tenant, session_id, version, leaf_id, metadata, created_at) "
    "VALUES (%(tenant)s, %(sid)s, %(version)s, %(leaf_id)s, %(version_metadata)s, "
    "%(updated_at)s)"
)
# Rows of one multi-row INSERT: Citus routes a multi-row VALUES list whose rows
# all go to one shard as one task; the cap keeps a statement's parameters far
# below the protocol's 65,535.
_ROWS_PER_INSERT = 1000


def _insert_entries(count: int) -> str:
    # Payload and digest go as binary bytea (`%b`), as the arrays of `guarded_write` do.
    row = "(" + ", ".join(["%s"] * 8 + ["%b", "%b", "%s"]) + ")"
    return f"INSERT INTO entries ({_ENTRY_COLUMNS}) VALUES {', '.join([row] * count)}"


def routed_write(
    plan: WritePlan,
    read: SessionState | None,
    *,
    tenant: str,
    absent: bool = False,
) -> list[tuple[str, Any]]:
    """`guarded_write` for distributed tables: its statements, to run in one transaction.

    The first statement fails with `LOST_RACE_SQLSTATE` if the session is not
    `read` (None: absent) or, with `absent`, if one of the appended ids has a
    record; otherwise the statements apply `plan`.
    """
    state = plan.state
    params: dict[str, Any] = {"tenant": tenant, "sid": state.session_id}
    values = session_values(
        state, time=lambda moment: moment, metadata=read is None or plan.metadata_changed
    )
    params.update(zip(SESSION_FIELDS, values, strict=True))
    if read is None:
        statements: list[tuple[str, Any]] = [(_ROUTED_INSERT_SESSION, params)]
    else:
        assert plan.appends or not absent, "the absence check reads the appended ids"
        guard = {**params, **guard_params(read, tenant)}
        if absent:
            guard["ids"] = TextArray([r.entry_id for r in plan.appends])
        update = _ROUTED_UPDATE_SESSION.format(absent=_IDS_ABSENT if absent else "")
        statements = [(update, guard)]
    if plan.removals:
        statements.append(
            (
                _ROUTED_STAMP_REMOVALS,
                {
                    "tenant": tenant,
                    "sid": state.session_id,
                    "version": state.version,
                    "removals": Int8Array(plan.removals),
                    "first_removal": min(plan.removals),
                    "last_removal": max(plan.removals),
                },
            )
        )
    for start in range(0, len(plan.appends), _ROWS_PER_INSERT):
        chunk = plan.appends[start : start + _ROWS_PER_INSERT]
        row_values = [value for r in chunk for value in entry_row(tenant, state.session_id, r)]
        statements.append((_insert_entries(len(chunk)), row_values))
    statements.append(
        (
            _ROUTED_INSERT_VERSION,
            {
                "tenant": tenant,
                "sid": state.session_id,
                "version": state.version,
                "leaf_id": state.leaf_id,
                "version_metadata": state.metadata if plan.metadata_changed else None,
                "updated_at": state.updated_at,
            },
        )
    )
    return statements


# -- the same write as one delegated call (Citus) ----------------------------------
#
# One exchange instead of one per statement: the coordinator forwards the call
# to the worker holding the session (`citus.create_write_function_sql`). It is
# delegated only outside a transaction block, so it goes alone, in autocommit
# mode, and the function sets the tenant on the worker itself.
_DELEGATED = "SELECT {function}({arguments})".format(
    function=WRITE_FUNCTION,
    arguments=", ".join(
        f"%({name}){'b' if name in ('payloads', 'digests') else 's'}::{kind}"
        for name, kind in WRITE_FUNCTION_ARGUMENTS
    ),
)


def delegated_write(
    plan: WritePlan,
    read: SessionState | None,
    *,
    tenant: str,
    absent: bool = False,
) -> tuple[str, dict[str, Any]]:
    """`guarded_write` as one call of the distributed write function (Citus).

    The call returns 1 if it wrote the plan, 0 (and wrote nothing) if the
    session is not `read` (None: absent) or, with `absent`, if one of the
    appended ids has a record.
    """
    state = plan.state
    params: dict[str, Any] = dict.fromkeys(name for name, _ in WRITE_FUNCTION_ARGUMENTS)
    params.update(tenant=tenant, sid=state.session_id, creating=read is None)
    values = session_values(
        state, time=lambda moment: moment, metadata=read is None or plan.metadata_changed
    )
    params.update(zip(SESSION_FIELDS, values, strict=True))
    if read is not None:
        assert plan.appends or not absent, "the absence check reads the appended ids"
        guard = guard_params(read, tenant)
        params.update(
            read_version=guard["read_version"],
            read_created_at=guard["read_created_at"],
            read_history_floor=guard["read_history_floor"],
        )
        if absent:
            params["absent_ids"] = TextArray([r.entry_id for r in plan.appends])
    if plan.removals:
        params["removals"] = Int8Array(plan.removals)
    if plan.appends:
        params.update(_append_params(plan.appends))
    params["version_metadata"] = state.metadata if plan.metadata_changed else None
    return _DELEGATED, params
