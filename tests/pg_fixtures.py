"""The Postgres fixtures of every test, as one pytest plugin (loaded by tests/conftest.py).

A server, a fresh schema per test, a URL into it and an admin connection. The
server comes from `pgserver` (EVENTLOG_TEST_DSN, the local server, or an embedded
one). Under `CI=true` a missing server fails these tests; elsewhere it skips them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pgserver
import psycopg
import pytest

_schema_numbers = itertools.count()


@pytest.fixture(scope="session")
def server_dsn() -> str:
    return pgserver.dsn_or_skip()


@pytest.fixture
def schema(server_dsn: str) -> str:
    """An empty schema of its own for one test (dropped at the end of the run)."""
    return pgserver.make_schema(f"pg{next(_schema_numbers)}")


@pytest.fixture
def url(server_dsn: str, schema: str) -> str:
    """A URL whose search path is the test's own schema."""
    return pgserver.with_search_path(server_dsn, schema)


@pytest.fixture
def admin(server_dsn: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A connection of the test itself (autocommit), for catalog reads and interference."""
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_schemas() -> Iterator[None]:
    yield
    pgserver.drop_schemas()
