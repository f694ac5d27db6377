"""Postgres fixtures of the fault scenarios: a server, a schema per test, its raw rows.

The server comes from `pgserver` (EVENTLOG_TEST_DSN, the local server, or an
embedded one). Under `CI=true` a missing server fails these tests; elsewhere
they skip.
"""

from __future__ import annotations

import itertools
import os

import pgserver
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
_schema_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    try:
        return pgserver.server_dsn()
    except pgserver.NoServerError as exc:
        if IN_CI:
            raise
        pytest.skip(f"no PostgreSQL server: {exc}")


@pytest.fixture
def pg_schema(pg_dsn: str) -> str:
    """An empty schema of the test's own (dropped at the end of the run)."""
    return pgserver.make_schema(f"fault{next(_schema_numbers)}")
