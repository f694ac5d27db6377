"""Citus: whether a schema's tables are distributed, and the statements that distribute them.

eventlog's tables are distributed by `session_id` (every primary and unique
key contains it) and colocated, so the rows of one session live on one shard
group and every statement that names one session can be routed to one worker.

On distributed tables the hot write is one call of `WRITE_FUNCTION`, a
function distributed with `sessions` by its session id argument: the
coordinator forwards the call to the worker that holds the session, which runs
it as a local transaction (one coordinator-to-worker exchange, one shard
group, no two-phase commit). `distribute` creates it; a store that finds the
tables distributed without it sends the write as routed statements
(`guarded.routed_write`).

Pure: statements only; the drivers and `eventlog.postgres.distribute` run them.
"""

from __future__ import annotations

from typing import Final

from .._sql.catalogue import SESSION_FIELDS, session_set_clause
from .._sql.migrations import OUR_TABLES
from .statements import LATEST_SQL, TENANT_PREFIX

__all__ = [
    "CITUS_INSTALLED_SQL",
    "DISTRIBUTED_TABLES_SQL",
    "WRITE_FUNCTION",
    "WRITE_FUNCTION_ARGUMENTS",
    "WRITE_FUNCTION_DELEGATED_SQL",
    "create_write_function_sql",
    "distribute_sql",
    "distribute_write_function_sql",
]

CITUS_INSTALLED_SQL: Final = "SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus')"
# Which of eventlog's tables on the search path are distributed. Run only where
# citus is installed: pg_dist_partition is its catalog.
DISTRIBUTED_TABLES_SQL: Final = (
    "SELECT t.name FROM unnest(%s::text[]) AS t(name) "
    "JOIN pg_dist_partition p ON p.logicalrelid = to_regclass(t.name) "
    "WHERE p.partmethod = 'h'"
)


def distribute_sql(table: str, shard_count: int | None) -> tuple[str, tuple[object, ...]]:
    """`create_distributed_table` of one of eventlog's tables, colocated with `sessions`.

    Args:
        table: one of `OUR_TABLES`.
        shard_count: shards of a new colocation group (None: Citus's
            `citus.shard_count`); only `sessions` starts a group.
    """
    if table not in OUR_TABLES:
        raise ValueError(f"not one of eventlog's tables: {table}")
    if table == "sessions":
        if shard_count is None:
            return "SELECT create_distributed_table('sessions', 'session_id')", ()
        return (
            "SELECT create_distributed_table('sessions', 'session_id', shard_count => %s)",
            (shard_count,),
        )
    return (
        f"SELECT create_distributed_table('{table}', 'session_id', colocate_with => 'sessions')",
        (),
    )


# -- the write as one delegated call ---------------------------------------------

WRITE_FUNCTION: Final = "eventlog_write"
# (name, type) of each argument, in order; the first is the distribution
# argument. The names are the parameters of `guarded.delegated_write`, with
# `p_` before them (so none is a column's name in the body).
_SESSION_TYPES: Final = {
    "version": "bigint",
    "leaf_id": "text",
    "metadata": "bytea",
    "next_seq": "bigint",
    "entry_count": "bigint",
    "removed_count": "bigint",
    "bytes": "bigint",
    "history_floor": "bigint",
    "created_at": "timestamptz",
    "updated_at": "timestamptz",
    "parent_session_id": "text",
    "forked_from_entry_id": "text",
    "data_key": "bytea",
}
WRITE_FUNCTION_ARGUMENTS: Final = (
    ("sid", "text"),
    ("tenant", "text"),
    ("creating", "boolean"),
    ("read_version", "bigint"),
    ("read_created_at", "timestamptz"),
    ("read_history_floor", "bigint"),
    ("absent_ids", "text[]"),
    *((name, _SESSION_TYPES[name]) for name in SESSION_FIELDS),
    ("removals", "bigint[]"),
    ("seqs", "bigint[]"),
    ("poss", "bigint[]"),
    ("ids", "text[]"),
    ("parents", "text[]"),
    ("kinds", "text[]"),
    ("timestamps", "text[]"),
    ("payloads", "bytea[]"),
    ("digests", "bytea[]"),
    ("added", "bigint[]"),
    ("version_metadata", "bytea"),
)
_SIGNATURE: Final = f"{WRITE_FUNCTION}({', '.join(kind for _, kind in WRITE_FUNCTION_ARGUMENTS)})"
# Whether the write function (this signature) exists on the search path and is
# distributed. Run only where citus is installed: pg_dist_object is its catalog.
WRITE_FUNCTION_DELEGATED_SQL: Final = (
    "SELECT EXISTS (SELECT FROM pg_dist_object "
    f"WHERE classid = 'pg_proc'::regclass AND objid = to_regprocedure('{_SIGNATURE}') "
    "AND distribution_argument_index = 0 AND colocationid IS NOT NULL)"
)


def _p(name: str) -> str:
    return f"p_{name}"


_GUARD = (
    "tenant = p_tenant AND session_id = p_sid AND version = p_read_version "
    "AND created_at = p_read_created_at AND history_floor = p_read_history_floor"
)
_UPDATE_SESSION = f"UPDATE sessions SET {session_set_clause(_p)} WHERE {_GUARD}"
_LATEST_OF_IDS = LATEST_SQL % {"ids": "p_absent_ids", "tenant": "p_tenant", "sid": "p_sid"}
_BODY = f"""
DECLARE
    v_first_removal bigint;
    v_last_removal bigint;
BEGIN
    -- The row-level security policies run here, on the worker: the tenant's
    -- setting is made here, transaction-local like the coordinator's.
    PERFORM set_config('eventlog.tenant', '{TENANT_PREFIX}' || p_tenant, true);
    IF p_creating THEN
        INSERT INTO sessions (tenant, session_id, {", ".join(SESSION_FIELDS)})
        VALUES (p_tenant, p_sid, {", ".join(_p(name) for name in SESSION_FIELDS)})
        ON CONFLICT (tenant, session_id) DO NOTHING;
    ELSE
        -- With absent ids (an unread append): only if none of them has a
        -- record, found by the store's own lookup (one index lookup per id).
        {_UPDATE_SESSION}
        AND (p_absent_ids IS NULL OR NOT EXISTS ({_LATEST_OF_IDS}));
    END IF;
    IF NOT FOUND THEN
        RETURN 0;  -- the session is not as read: nothing written, the store plans again
    END IF;
    IF p_removals IS NOT NULL THEN
        -- The range bounds the key range read (see `guarded`'s removals).
        SELECT min(r), max(r) INTO v_first_removal, v_last_removal FROM unnest(p_removals) AS r;
        UPDATE entries SET removed_in_version = p_version
        WHERE tenant = p_tenant AND session_id = p_sid
        AND seq >= v_first_removal AND seq <= v_last_removal AND seq = ANY(p_removals);
    END IF;
    IF p_seqs IS NOT NULL THEN
        INSERT INTO entries (tenant, session_id, seq, pos, entry_id, parent_id, kind, ts,
                             payload, digest, added_in_version)
        SELECT p_tenant, p_sid, a.*
        FROM unnest(p_seqs, p_poss, p_ids, p_parents, p_kinds, p_timestamps, p_payloads,
                    p_digests, p_added) AS a;
    END IF;
    INSERT INTO session_versions (tenant, session_id, version, leaf_id, metadata, created_at)
    VALUES (p_tenant, p_sid, p_version, p_leaf_id, p_version_metadata, p_updated_at);
    RETURN 1;
END
"""


def create_write_function_sql() -> str:
    """`CREATE OR REPLACE FUNCTION` of the write function, in the search path's first schema.

    It applies a `WritePlan` as `guarded.guarded_write` does and returns 1, or
    returns 0 and writes nothing if the session is not as read (its arguments:
    `guarded.delegated_write`). It runs as the caller (row-level security
    applies), and sets the tenant for the policies itself.
    """
    arguments = ", ".join(f"{_p(name)} {kind}" for name, kind in WRITE_FUNCTION_ARGUMENTS)
    return (
        f"CREATE OR REPLACE FUNCTION {WRITE_FUNCTION}({arguments}) RETURNS integer "
        # The body's tables are the creator's: on the worker the caller's
        # search_path is not the coordinator's. The pool's settings do not
        # reach the worker either: without enable_seqscan = off, a plan made
        # while the shard looked small reads the whole shard for each lookup.
        "LANGUAGE plpgsql SET search_path FROM CURRENT SET enable_seqscan = off "
        f"AS $eventlog${_BODY}$eventlog$"
    )


def distribute_write_function_sql() -> str:
    """`create_distributed_function` of the write function: delegated by its session id,
    to the worker holding that session's shards of `sessions`."""
    return (
        f"SELECT create_distributed_function('{_SIGNATURE}', "
        "distribution_arg_name => 'p_sid', colocate_with => 'sessions')"
    )
