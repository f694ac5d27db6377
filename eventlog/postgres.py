"""The PostgreSQL backend, sync (`PostgresStore`) and async (`AsyncPostgresStore`).

Both drivers run the same SQL (`_postgres/statements.py`); the sync one is generated from
the async one. `AsyncPostgresStore` runs the sync driver in worker threads
(`_postgres/threaded.py`); `HomeLoopPostgresStore` runs the async driver on a loop
thread of its own (``connect_async(url, async_runner="loop")``). Loaded on first use, so `import
eventlog` does not import psycopg.
"""

from __future__ import annotations

from ._postgres.any_loop import HomeLoopPostgresStore
from ._postgres.app_role import GRANTS, AppRole, TableGrant, create_app_role
from ._postgres.driver import PostgresStore
from ._postgres.threaded import AsyncPostgresStore

__all__ = [
    "GRANTS",
    "AppRole",
    "AsyncPostgresStore",
    "HomeLoopPostgresStore",
    "PostgresStore",
    "TableGrant",
    "create_app_role",
    "distribute",
    "migrate",
]


def migrate(url: str, *, partitions: int | None = None) -> list[int]:
    """Create or upgrade eventlog's schema in the database at `url`.

    Args:
        partitions: for a new schema, hash-partition the tables by session_id
            into this many partitions.

    Returns:
        The schema versions applied (empty if it was up to date).
    """
    store = PostgresStore(url, partitions=partitions, min_size=1, max_size=1)
    try:
        return store.migrate()
    finally:
        store.close()


def distribute(url: str, *, shard_count: int | None = None) -> list[str]:
    """Distribute eventlog's tables on a Citus coordinator by session_id, colocated.

    Migrates the schema first (a new one is created), then runs
    `create_distributed_table` for each table not yet distributed: `sessions`
    first, the others colocated with it; then creates the write function and
    distributes it with `sessions` (`create_distributed_function`), so each
    hot write is one call the coordinator delegates to the session's worker.
    Run it on the coordinator, where the
    citus extension exists and the workers are registered; the tables keep
    their rows (Citus moves them to the shards).

    Args:
        shard_count: shards of the tables (None: the server's `citus.shard_count`).

    Returns:
        The tables it distributed (empty if all already were).

    Raises:
        InvalidConfigError: the database has no citus extension, or `shard_count`
            is not a positive int.
    """
    import psycopg

    from ._postgres import citus
    from ._postgres.errors import connect_error, translated
    from ._sql.migrations import OUR_TABLES
    from .errors import InvalidConfigError

    if shard_count is not None and (
        isinstance(shard_count, bool) or not isinstance(shard_count, int) or shard_count < 1
    ):
        raise InvalidConfigError("shard_count must be a positive int")
    migrate(url)
    try:
        conn = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise connect_error(exc) from None
    with conn, translated():
        row = conn.execute(citus.CITUS_INSTALLED_SQL).fetchone()
        if row is None or not row[0]:
            raise InvalidConfigError(
                "the database has no citus extension: CREATE EXTENSION citus on every node first"
            )
        done = {name for (name,) in conn.execute(citus.DISTRIBUTED_TABLES_SQL, (list(OUR_TABLES),))}
        made = []
        for table in OUR_TABLES:
            if table not in done:
                conn.execute(*citus.distribute_sql(table, shard_count))
                made.append(table)
        # The hot write as one call, delegated to the session's worker (again
        # on each run: CREATE OR REPLACE keeps it the one this eventlog sends).
        conn.execute(citus.create_write_function_sql())
        conn.execute(citus.distribute_write_function_sql())
        return made
