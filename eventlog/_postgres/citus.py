"""Citus: whether a schema's tables are distributed, and the statements that distribute them.

eventlog's tables are distributed by `session_id` (every primary and unique
key contains it) and colocated, so the rows of one session live on one shard
group and every statement that names one session can be routed to one worker.

Pure: statements only; the drivers and `eventlog.postgres.distribute` run them.
"""

from __future__ import annotations

from typing import Final

from .._sql.migrations import OUR_TABLES

__all__ = [
    "CITUS_INSTALLED_SQL",
    "DISTRIBUTED_TABLES_SQL",
    "distribute_sql",
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
