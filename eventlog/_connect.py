"""Open a store from a URL."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ._core.codec import check_tenant
from ._core.options import (
    check_flag,
    check_max_entry_bytes,
    check_seconds,
    check_snapshot_memo_bytes,
)
from .errors import InvalidConfigError
from .keyring import KeyProvider, check_keyring
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


def _pool_size(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidConfigError(f"{name} must be an int >= 1")
    return value


def _check_options(scheme: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate the options every backend takes, before anything is opened.

    Unknown names are left to the store class (a TypeError, reported as such).
    """
    checked = dict(options)
    if checked.get("max_entry_bytes") is not None:
        check_max_entry_bytes(checked["max_entry_bytes"])
    if checked.get("snapshot_memo_bytes") is not None:
        check_snapshot_memo_bytes(checked["snapshot_memo_bytes"])
    if "migrate" in checked:
        check_flag("migrate", checked["migrate"])
    if scheme == "sqlite":
        if "busy_timeout" in checked:
            checked["busy_timeout"] = check_seconds(
                "busy_timeout", checked["busy_timeout"], zero=True
            )
        if "synchronous" in checked and checked["synchronous"] not in ("full", "normal"):
            raise InvalidConfigError("synchronous must be 'full' or 'normal'")
    elif scheme in ("postgresql", "postgres"):
        if "notify" in checked:
            check_flag("notify", checked["notify"])
        if "timeout" in checked:
            checked["timeout"] = check_seconds("timeout", checked["timeout"], zero=False)
        sizes = [_pool_size(n, checked[n]) for n in ("min_size", "max_size") if n in checked]
        if "min_size" in checked and "max_size" in checked and sizes[0] > sizes[1]:
            raise InvalidConfigError("pool sizes must satisfy 1 <= min_size <= max_size")
        partitions = checked.get("partitions")
        if partitions is not None and (
            isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1
        ):
            raise InvalidConfigError("partitions must be None or an int >= 1")
    return checked


def _sqlite_arguments(url: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    parts = urlsplit(url)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _SQLITE_QUERY_OPTIONS:
            raise InvalidConfigError(f"unknown SQLite URL option {key!r}")
        try:
            options.setdefault(key, _SQLITE_QUERY_OPTIONS[key](value))
        except ValueError:
            raise InvalidConfigError(f"bad value for SQLite option {key!r}") from None
    return sqlite_path(url.split("?", 1)[0]), _check_options("sqlite", options)


# How an async PostgreSQL store runs its calls: the sync driver on worker threads,
# or the async driver on a loop thread of the store's own (README, "Choices").
_ASYNC_RUNNERS = ("threads", "loop")

_UNKNOWN_SCHEME = "unknown URL scheme; use memory://, sqlite:///file.db or postgresql://..."


def connect(
    url: str,
    *,
    tenant: str | None = None,
    keyring: KeyProvider | None = None,
    **options: Any,
) -> Store:
    """Open a store.

    Args:
        url: ``memory://``, ``sqlite:///relative.db``, ``sqlite:////absolute.db``
            or ``postgresql://user@host/db``.
        tenant: the tenant whose sessions the store reads and writes; None is
            the default tenant ``""``, where all data written before tenants
            existed lives. A tenant id follows the session id rules. On
            PostgreSQL row-level security enforces it too (DESIGN.md section
            7); ``memory://`` opens a new, empty memory (`MemoryStore.for_tenant`
            opens another tenant's view of one).
        keyring: an `eventlog.Keyring` (or another `KeyProvider`, e.g. a KMS
            client): new sessions are sealed, their payloads and metadata
            encrypted in the client under a data key of their own (DESIGN.md
            section 8), and sealed sessions open. Without it, reading a sealed
            session's payloads or metadata raises `DecryptionError`.
        **options: keyword options of the backend's store class, e.g.
            ``max_entry_bytes``, ``snapshot_memo_bytes``, ``migrate=False``; SQLite also takes
            ``synchronous`` and ``busy_timeout`` (or as URL query parameters),
            Postgres ``min_size``, ``max_size`` and ``timeout``.

    Raises:
        InvalidConfigError: the URL or an option is not usable.
        InvalidIdError: the tenant id breaks the session id rules.
        StoreUnavailableError: the database cannot be reached or opened.
        SchemaVersionError: the database schema is newer, or not eventlog's.
    """
    scheme = _scheme(url)
    check_tenant(tenant)  # before anything is opened
    check_keyring(keyring)
    try:
        if scheme == "memory":
            from ._memory import MemoryStore

            return MemoryStore(tenant=tenant, keyring=keyring, **_check_options(scheme, options))
        if scheme == "sqlite":
            from ._sqlite.driver import SQLiteStore

            path, options = _sqlite_arguments(url, options)
            return SQLiteStore(path, tenant=tenant, keyring=keyring, **options)
        if scheme in ("postgresql", "postgres"):
            from .postgres import PostgresStore

            return PostgresStore.open(
                url, tenant=tenant, keyring=keyring, **_check_options(scheme, options)
            )
    except TypeError as exc:
        raise InvalidConfigError(f"bad option for {scheme}: {exc}") from None
    raise InvalidConfigError(_UNKNOWN_SCHEME)


async def connect_async(
    url: str,
    *,
    tenant: str | None = None,
    keyring: KeyProvider | None = None,
    **options: Any,
) -> AsyncStore:
    """Open an async store: ``store = await connect_async(url)``.

    Takes the same URLs, tenant, keyring and options as `connect`. Opening (and
    migrating) the embedded SQLite file runs off the event loop. PostgreSQL also
    takes ``async_runner``: ``"threads"`` (the default) runs each call on the sync
    driver in one of ``max_size`` worker threads; ``"loop"`` runs the asyncio
    driver on one loop thread of the store's own (one thread's CPU for all calls).

    Raises:
        InvalidConfigError: the URL or an option is not usable.
        InvalidIdError: the tenant id breaks the session id rules.
        StoreUnavailableError: the database cannot be reached or opened.
        SchemaVersionError: the database schema is newer, or not eventlog's.
    """
    scheme = _scheme(url)
    check_tenant(tenant)  # before anything is opened
    check_keyring(keyring)
    try:
        if scheme == "memory":
            from ._memory import AsyncMemoryStore

            return AsyncMemoryStore(
                tenant=tenant, keyring=keyring, **_check_options(scheme, options)
            )
        if scheme == "sqlite":
            from ._sqlite.driver import AsyncSQLiteStore

            path, options = _sqlite_arguments(url, options)
            return await asyncio.to_thread(
                AsyncSQLiteStore, path, tenant=tenant, keyring=keyring, **options
            )
        if scheme in ("postgresql", "postgres"):
            from .postgres import AsyncPostgresStore, HomeLoopPostgresStore

            runner = options.pop("async_runner", "threads")
            if runner not in _ASYNC_RUNNERS:
                raise InvalidConfigError("async_runner must be 'threads' or 'loop'")
            store_class = AsyncPostgresStore if runner == "threads" else HomeLoopPostgresStore
            return await store_class.open(
                url, tenant=tenant, keyring=keyring, **_check_options(scheme, options)
            )
    except TypeError as exc:
        raise InvalidConfigError(f"bad option for {scheme}: {exc}") from None
    raise InvalidConfigError(_UNKNOWN_SCHEME)
