"""Postgres fixtures of the fault scenarios: a server, a schema per test, its raw rows.

The server comes from `pgserver` (EVENTLOG_TEST_DSN, the local server, or an
embedded one). Under `CI=true` a missing server fails these tests; elsewhere
they skip.
"""

from __future__ import annotations

import itertools

import pgserver
import pytest

_schema_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return pgserver.dsn_or_skip()


@pytest.fixture
def pg_schema(pg_dsn: str) -> str:
    """An empty schema of the test's own (dropped at the end of the run)."""
    return pgserver.make_schema(f"fault{next(_schema_numbers)}")
