"""The PostgreSQL backend, sync (`PostgresStore`) and async (`AsyncPostgresStore`).

Both drivers run the same SQL (`_postgres/statements.py`); the sync one is generated from
the async one. Loaded on first use, so `import eventlog` does not import psycopg.
"""

from __future__ import annotations

from ._postgres.any_loop import AsyncPostgresStore
from ._postgres.app_role import GRANTS, AppRole, TableGrant, create_app_role
from ._postgres.driver import PostgresStore

__all__ = [
    "GRANTS",
    "AppRole",
    "AsyncPostgresStore",
    "PostgresStore",
    "TableGrant",
    "create_app_role",
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
