"""App roles on the test server: made by `eventlog migrate --app-role`, dropped after the run.

Each role is named for this run (`eventlog_app_<run tag>_<name>`), so parallel runs on
one server never share one. The tests connect as it over TCP with trust
authentication (the shared server's `127.0.0.1` rule); the role has no password.
"""

from __future__ import annotations

import atexit
import secrets

import pgserver
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from eventlog.cli.commands import cli

_RUN_TAG = secrets.token_hex(3)
_made_roles: list[str] = []


def role_name(name: str) -> str:
    """This run's name for an app role."""
    return f"eventlog_app_{_RUN_TAG}_{name}".replace("-", "_")


def make_app_role(schema: str, name: str, *, partitions: int | None = None) -> str:
    """Migrate `schema` as the server's superuser and create its app role, through the CLI.

    Returns the role's name; the role is dropped at the end of the run (`drop_roles`).
    """
    role = role_name(name)
    owner_url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    args = ["migrate", "--url", owner_url, "--app-role", role]
    if partitions:
        args += ["--partitions", str(partitions)]
    if role not in _made_roles:
        _made_roles.append(role)
    cli.main(args, prog_name="eventlog", standalone_mode=False)
    return role


def role_url(role: str, schema: str) -> str:
    """A URL that connects to the test server as `role`, searching `schema`."""
    params = conninfo_to_dict(pgserver.server_dsn())
    host = params.get("host", "127.0.0.1")
    port = params.get("port", 5432)
    dbname = params.get("dbname", "test")
    return pgserver.with_search_path(f"postgresql://{role}@{host}:{port}/{dbname}", schema)


def drop_role(role: str) -> None:
    """Drop an app role and every right it holds in the test database."""
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if exists is None:
            return
        who = sql.Identifier(role)
        # Its open sessions first: a store a failed test left open would hold it.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        conn.execute(sql.SQL("DROP OWNED BY {}").format(who))
        conn.execute(sql.SQL("DROP ROLE {}").format(who))


def drop_roles() -> None:
    """Drop every app role this run made."""
    while _made_roles:
        drop_role(_made_roles.pop())


atexit.register(drop_roles)
