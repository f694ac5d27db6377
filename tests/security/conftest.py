"""Fixtures of the security tests: a schema per module, its app role, connections as both.

Everything here runs on a real PostgreSQL server, connected as a role that is
not a superuser (superusers and BYPASSRLS roles skip row-level security).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import app_roles
import pgserver
import psycopg
import pytest
from psycopg import sql


class AppSchema:
    """A migrated schema, its app role, and URLs as the role and as the owner."""

    def __init__(self, schema: str, role: str) -> None:
        self.schema = schema
        self.role = role
        self.url = app_roles.role_url(role, schema)
        self.owner_url = pgserver.with_search_path(pgserver.server_dsn(), schema)

    def table(self, name: str) -> sql.Composed:
        return sql.SQL("{}").format(sql.Identifier(self.schema, name))


@pytest.fixture(scope="module")
def app_schema(request: pytest.FixtureRequest) -> Iterator[AppSchema]:
    """A schema of this module, migrated by `eventlog migrate --app-role`, and its role."""
    pgserver.dsn_or_skip()
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    schema = pgserver.make_schema(f"sec_{name}")
    role = app_roles.make_app_role(schema, name)
    yield AppSchema(schema, role)
    app_roles.drop_role(role)


@pytest.fixture
def empty(app_schema: AppSchema) -> AppSchema:
    """The module's schema with its tables emptied (by the owner: the role may not TRUNCATE)."""
    pgserver.truncate(app_schema.schema)
    return app_schema


@pytest.fixture
def as_role(app_schema: AppSchema) -> Iterator[psycopg.Connection[Any]]:
    """A plain psycopg connection as the app role (autocommit)."""
    with psycopg.connect(app_schema.url, autocommit=True) as conn:
        user = conn.execute("SELECT current_user").fetchone()
        assert user is not None and user[0] == app_schema.role
        yield conn


@pytest.fixture
def as_owner(app_schema: AppSchema) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the tables' owner (the server's superuser here), autocommit."""
    with psycopg.connect(app_schema.owner_url, autocommit=True) as conn:
        yield conn
