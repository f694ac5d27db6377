"""Open a store from a URL."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .errors import InvalidConfigError
from .store import AsyncStore, Store

__all__ = ["DEFAULT_URL", "connect", "connect_async", "sqlite_path"]

DEFAULT_URL = "sqlite:///eventlog.db"

_SQLITE_QUERY_OPTIONS = {"synchronous": str, "busy_timeout": float}


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL."""
    if not url.startswith("sqlite:///"):
        raise InvalidConfigError(
            "a SQLite URL is sqlite:///relative/file.db or sqlite:////absolute/file.db"
        )
    path = urlsplit(url).path
    # urlsplit keeps the slash after the empty host: "/rel.db" or "//abs.db".
    return path[1:]


def _scheme(url: object) -> str:
    if not isinstance(url, str):
        raise InvalidConfigError(f"url must be a str, not {type(url).__name__}")
    return url.split(":", 1)[0].lower() if ":" in url else ""


def _sqlite_arguments(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _SQLITE_QUERY_OPTIONS:
            raise InvalidConfigError(f"unknown SQLite URL option {key!r}")
        try:
            options.setdefault(key, _SQLITE_QUERY_OPTIONS[key](value))
        except ValueError:
            raise InvalidConfigError(f"bad value for SQLite option {key!r}") from None
    return sqlite_path(url.split("?", 1)[0]), options


_UNKNOWN_SCHEME = "unknown URL scheme; use memory://, sqlite:///file.db or postgresql://..."


def connect(url: str, **options: Any) -> Store:
    """Open a store.

    Args:
        url: ``memory://``, ``sqlite:///relative.db``, ``sqlite:////absolute.db``
            or ``postgresql://user@host/db``.
        **options: keyword options of the backend's store class, e.g.
            ``max_entry_bytes``, ``migrate=False``; SQLite also takes
            ``synchronous`` and ``busy_timeout`` (or as URL query parameters),
            Postgres ``min_size``, ``max_size`` and ``timeout``.

    Raises:
        InvalidConfigError: the URL or an option is not usable.
        StoreUnavailableError: the database cannot be reached or opened.
        SchemaVersionError: the database schema is newer, or not eventlog's.
    """
    scheme = _scheme(url)
    try:
        if scheme == "memory":
            from .memory import MemoryStore

            return MemoryStore(**options)
        if scheme == "sqlite":
            from .sqlite import SQLiteStore

            path, options = _sqlite_arguments(url, options)
            return SQLiteStore(path, **options)
        if scheme in ("postgresql", "postgres"):
            from .postgres import PostgresStore

            return PostgresStore.open(url, **options)
    except TypeError as exc:
        raise InvalidConfigError(f"bad option for {scheme}: {exc}") from None
    raise InvalidConfigError(_UNKNOWN_SCHEME)


async def connect_async(url: str, **options: Any) -> AsyncStore:
    """Open an async store: ``store = await connect_async(url)``.

    Takes the same URLs and options as `connect`. Opening (and migrating) the
    embedded SQLite file runs off the event loop.

    Raises:
        InvalidConfigError: the URL or an option is not usable.
        StoreUnavailableError: the database cannot be reached or opened.
        SchemaVersionError: the database schema is newer, or not eventlog's.
    """
    scheme = _scheme(url)
    try:
        if scheme == "memory":
            from .memory import AsyncMemoryStore

            return AsyncMemoryStore(**options)
        if scheme == "sqlite":
            from .sqlite import AsyncSQLiteStore

            path, options = _sqlite_arguments(url, options)
            return await asyncio.to_thread(AsyncSQLiteStore, path, **options)
        if scheme in ("postgresql", "postgres"):
            from .postgres import AsyncPostgresStore

            return await AsyncPostgresStore.open(url, **options)
    except TypeError as exc:
        raise InvalidConfigError(f"bad option for {scheme}: {exc}") from None
    raise InvalidConfigError(_UNKNOWN_SCHEME)
