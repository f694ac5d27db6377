"""Versioned schema migrations: numbered SQL files in `schema/<backend>/`.

`plan_migrations` decides, free of IO, what a migration runs: the pending
files' statements in order, each file recorded in `eventlog_schema_version`.
Each backend reads the applied version and runs the plan in one transaction
under its lock (SQLite: `BEGIN IMMEDIATE`; Postgres: an advisory lock). A
database whose recorded schema is newer than the files this eventlog ships is
refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec

from ..errors import SchemaVersionError

__all__ = [
    "OUR_TABLES",
    "VERSION_TABLE",
    "Migration",
    "MigrationPlan",
    "check_current",
    "check_not_newer",
    "migrations",
    "pending",
    "plan_migrations",
    "split_statements",
]

VERSION_TABLE = "eventlog_schema_version"
OUR_TABLES = ("sessions", "entries", "session_versions")
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class Migration(msgspec.Struct, frozen=True):
    """One schema file: its number, name and SQL."""

    version: int
    name: str
    sql: str


def _schema_dir(backend: str) -> Path:
    # Installed wheels carry the files as `eventlog/_schema`; a source checkout
    # (and an editable install) reads the top-level `schema/` folder.
    packaged = Path(str(resources.files("eventlog"))) / "_schema" / backend
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "schema" / backend


@cache
def migrations(backend: str) -> tuple[Migration, ...]:
    """Every schema file of a backend, in order."""
    found = []
    for path in sorted(_schema_dir(backend).glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise SchemaVersionError(f"unexpected schema file name {path.name!r}")
        found.append(Migration(int(match[1]), match[2], path.read_text("utf-8")))
    if not found:
        raise SchemaVersionError(f"no schema files for backend {backend!r}")
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise SchemaVersionError(f"schema files of {backend!r} are not numbered 1..n")
    return tuple(found)


def check_not_newer(backend: str, applied: int) -> None:
    """Refuse a database whose schema is newer than this eventlog knows."""
    known = len(migrations(backend))
    if applied > known:
        raise SchemaVersionError(
            f"the database schema is at version {applied}, but this eventlog knows only "
            f"up to {known}: upgrade eventlog"
        )


def pending(backend: str, applied: int) -> Sequence[Migration]:
    """The migrations after version `applied`."""
    check_not_newer(backend, applied)
    return migrations(backend)[applied:]


def check_current(backend: str, applied: int, *, how_to_migrate: str) -> None:
    """Refuse a database whose schema is not the one this eventlog ships.

    Args:
        how_to_migrate: what the message tells the user to run.
    """
    check_not_newer(backend, applied)
    if applied < len(migrations(backend)):
        raise SchemaVersionError(f"the database schema is at version {applied}; {how_to_migrate}")


def split_statements(sql: str) -> list[str]:
    """A schema file as its statements (our files keep `;` out of literals)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


class MigrationPlan(msgspec.Struct, frozen=True):
    """What one migration runs: `statements` in order, applying `versions`."""

    versions: list[int]
    statements: list[tuple[str, tuple[Any, ...]]]


def plan_migrations(
    backend: str,
    applied: int,
    *,
    version_table_sql: str,
    record_sql: str,
    record_params: Callable[[Migration], tuple[Any, ...]],
    split: Callable[[str], list[str]] = split_statements,
) -> MigrationPlan:
    """The statements that bring a database from version `applied` to the newest.

    Args:
        version_table_sql: creates the version table if it does not exist.
        record_sql: records one applied file, with `record_params` of it.
        split: a file's statements in the backend's dialect.

    Raises:
        SchemaVersionError: the database is newer than this eventlog.
    """
    todo = pending(backend, applied)
    statements: list[tuple[str, tuple[Any, ...]]] = []
    if todo:
        statements.append((version_table_sql, ()))
    for step in todo:
        statements += [(statement, ()) for statement in split(step.sql)]
        statements.append((record_sql, record_params(step)))
    return MigrationPlan([step.version for step in todo], statements)
