"""Backends under test: every contract test runs once per backend through `store`.

The async stores join through `SyncFacade`, which runs each call on an event
loop in a background thread, so the one contract suite covers them unchanged.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pgserver
import pytest

import eventlog
from eventlog.memory import AsyncMemoryStore, MemoryStore

pytest_plugins = ["pg_fixtures"]

SYNC_BACKENDS = ["memory", "sqlite", "postgres", "postgres-partitioned"]
ASYNC_BACKENDS = ["memory-async", "sqlite-async", "postgres-async"]
BACKENDS = SYNC_BACKENDS + ASYNC_BACKENDS
POSTGRES_PARTITIONS = 4


@cache
def _background_loop() -> asyncio.AbstractEventLoop:
    """One event loop, in a daemon thread, that every `SyncFacade` runs its calls on."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="facade-loop").start()
    return loop


class SyncFacade:
    """The `Store` API over an `AsyncStore`, each call run on a background event loop."""

    def __init__(self, opener: Callable[[], Coroutine[Any, Any, eventlog.AsyncStore]]) -> None:
        self.inner: eventlog.AsyncStore = self._call(opener())

    @staticmethod
    def _call(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, _background_loop()).result()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)
        return lambda *args, **kwargs: self._call(method(*args, **kwargs))

    def close(self) -> None:
        self._call(self.inner.close())

    def __enter__(self) -> SyncFacade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    return SyncFacade(lambda: eventlog.connect_async(url))  # type: ignore[return-value]


@cache
def _postgres_schema(partitioned: bool) -> str:
    """A schema of this run for one Postgres variant, migrated once."""
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("partitioned" if partitioned else "plain")
    url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    with eventlog.connect(url, partitions=POSTGRES_PARTITIONS if partitioned else None):
        pass
    return schema


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
    raise AssertionError(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened = open_backend(request.param, tmp_path)
    try:
        yield opened
    finally:
        opened.store.close()


@pytest.fixture
def store(backend: Backend) -> eventlog.Store:
    return backend.store

