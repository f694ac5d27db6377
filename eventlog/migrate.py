"""Versioned schema migrations: numbered SQL files in `schema/<backend>/`.

Each backend applies the pending files in order, in one transaction, under a
lock (SQLite: `BEGIN IMMEDIATE`; Postgres: an advisory lock), and records
each in `eventlog_schema_version`. A database whose recorded schema is newer
than the files this eventlog ships is refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from pathlib import Path

import msgspec

from .errors import SchemaVersionError

__all__ = [
    "OUR_TABLES",
    "VERSION_TABLE",
    "Migration",
    "check_not_newer",
    "migrations",
    "pending",
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
    return Path(__file__).resolve().parent.parent / "schema" / backend


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
