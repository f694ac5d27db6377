"""Backends under test: every contract test runs once per backend through `store`.

The contract suite and its `store` fixture come from `eventlog.testing` (its
plugin); this file points its `backend` fixture at the seven backends. The async
stores join through `SyncFacade`, which runs each call on an event loop in a
background thread, so the one contract suite covers them unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import app_roles
import pgserver
import pytest

import eventlog
from eventlog.memory import AsyncMemoryStore, MemoryStore
from eventlog.testing import SyncFacade, backend_fixture, sync_store

pytest_plugins = ["eventlog.testing.plugin", "pg_fixtures", "pytester"]

SYNC_BACKENDS = ["memory", "sqlite", "postgres", "postgres-partitioned"]
ASYNC_BACKENDS = ["memory-async", "sqlite-async", "postgres-async"]
BACKENDS = SYNC_BACKENDS + ASYNC_BACKENDS
# PostgreSQL connected as the least-privilege role `eventlog migrate --app-role`
# makes (DESIGN.md 7): a subset of the contract suite runs on it too (`app_roles`).
APP_ROLE_BACKEND = "postgres-app-role"
POSTGRES_PARTITIONS = 4


@dataclass
class Backend:
    """A store under test plus a way to count its raw stored rows."""

    name: str
    url: str
    store: eventlog.Store
    count_rows: Callable[[], int]
    connect: Callable[[str], eventlog.Store]

    def reopen(self) -> eventlog.Store:
        """Close the store and open the same database again (memory keeps its state)."""
        if self.name.startswith("memory"):
            return self.store
        self.store.close()
        self.store = self.connect(self.url)
        return self.store


def _sqlite_row_count(path: Path) -> Callable[[], int]:
    def count() -> int:
        with sqlite3.connect(path) as conn:
            return sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("sessions", "entries", "session_versions")
            )

    return count


def _connect_async(url: str) -> eventlog.Store:
    return sync_store(lambda: eventlog.connect_async(url))


@cache
def _postgres_schema(partitioned: bool) -> str:
    """A schema of this run for one Postgres variant, migrated once."""
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("partitioned" if partitioned else "plain")
    url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    with eventlog.connect(url, partitions=POSTGRES_PARTITIONS if partitioned else None):
        pass
    return schema


@cache
def _app_role_schema() -> tuple[str, str]:
    """A schema of this run and its app role, made once by `eventlog migrate --app-role`."""
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("app_role")
    return schema, app_roles.make_app_role(schema, "contract")


def open_backend(name: str, tmp_path: Path) -> Backend:
    """Open a fresh, empty store of one backend."""
    kind = name.removesuffix("-async")
    connect = _connect_async if name.endswith("-async") else eventlog.connect
    if kind == "memory":
        store = connect("memory://")
        inner = store.inner if isinstance(store, SyncFacade) else store
        assert isinstance(inner, MemoryStore | AsyncMemoryStore)
        return Backend(name, "memory://", store, inner.record_count, connect)
    if kind == "sqlite":
        path = tmp_path / "contract.db"
        url = f"sqlite:///{path}"
        return Backend(name, url, connect(url), _sqlite_row_count(path), connect)
    if kind in ("postgres", "postgres-partitioned"):
        schema = _postgres_schema(kind == "postgres-partitioned")
        pgserver.truncate(schema)
        url = pgserver.with_search_path(pgserver.server_dsn(), schema)
        return Backend(name, url, connect(url), lambda: pgserver.row_count(schema), connect)
    if kind == APP_ROLE_BACKEND:
        schema, role = _app_role_schema()
        pgserver.truncate(schema)  # as the superuser: the app role may not TRUNCATE
        url = app_roles.role_url(role, schema)
        return Backend(name, url, connect(url), lambda: pgserver.row_count(schema), connect)
    raise AssertionError(name)


backend = backend_fixture(open_backend, [*BACKENDS, APP_ROLE_BACKEND])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the app-role variant only on its subset of tests/contract (`app_roles`)."""
    left_out = app_roles.app_role_items_left_out(items, APP_ROLE_BACKEND)
    if left_out:
        dropped = set(map(id, left_out))
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if id(item) not in dropped]
