"""Backends under test: every contract test runs once per backend through `store`."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import eventlog
from eventlog.memory import MemoryStore

BACKENDS = ["memory", "sqlite"]


@dataclass
class Backend:
    """A store under test plus a way to count its raw stored rows."""

    name: str
    url: str
    store: eventlog.Store
    count_rows: Callable[[], int]

    def reopen(self) -> eventlog.Store:
        """Close the store and open the same database again (memory keeps its state)."""
        if self.name == "memory":
            return self.store
        self.store.close()
        self.store = eventlog.connect(self.url)
        return self.store


def _sqlite_row_count(path: Path) -> Callable[[], int]:
    def count() -> int:
        with sqlite3.connect(path) as conn:
            return sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("sessions", "entries", "session_versions")
            )

    return count


def open_backend(name: str, tmp_path: Path) -> Backend:
    if name == "memory":
        store = eventlog.connect("memory://")
        assert isinstance(store, MemoryStore)
        return Backend(name, "memory://", store, store.record_count)
    if name == "sqlite":
        path = tmp_path / "contract.db"
        url = f"sqlite:///{path}"
        return Backend(name, url, eventlog.connect(url), _sqlite_row_count(path))
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
