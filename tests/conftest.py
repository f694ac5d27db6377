"""Backends under test: every contract test runs once per backend through `store`.

The contract suite and its `store` fixture come from `eventlog.testing` (its
plugin); this file points its `backend` fixture at the seven backends. The async
stores join through `SyncFacade`, which runs each call on an event loop in a
background thread, so the one contract suite covers them unchanged.

Seven sealed variants (`-sealed`: the same backends opened with a keyring,
DESIGN.md section 8) run the contract suite unchanged with payloads and metadata
encrypted: all seven and every module with `-m slow`, by default three of them
on the modules that store and read payloads (`SLOW_SEALED_BACKENDS`).

Three tenant variants (`tenant_backends.py`) run the contract modules in
`TENANT_MODULES` on a store for tenant "a" of a database where tenant "b"
holds sessions with the same ids, checked unchanged after each test.

`postgres` and `postgres-sealed` connect as the least-privilege role `eventlog
migrate --app-role` makes (`app_roles.py`, DESIGN.md 7), so the whole contract
suite runs under row-level security with only the app role's rights; the other
PostgreSQL variants connect as the tables' owner (the server's superuser).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

import app_roles
import pgserver
import pytest
import tenant_backends

import eventlog
from eventlog.memory import AsyncMemoryStore, MemoryStore
from eventlog.testing import SyncFacade, sync_store

pytest_plugins = ["eventlog.testing.plugin", "pg_fixtures", "pytester"]

SYNC_BACKENDS = ["memory", "sqlite", "postgres", "postgres-partitioned"]
ASYNC_BACKENDS = ["memory-async", "sqlite-async", "postgres-async"]
BACKENDS = SYNC_BACKENDS + ASYNC_BACKENDS
# Every backend again with a keyring: the contract holds for sealed sessions too.
SEALED_SUFFIX = "-sealed"
SEALED_BACKENDS = [name + SEALED_SUFFIX for name in BACKENDS]
# One keyring for the run, two key ids (the active one wraps new data keys).
CONTRACT_KEYRING = eventlog.Keyring(
    {"contract-old": os.urandom(32), "contract": os.urandom(32)}, active="contract"
)
# Tenant variants of the sync stores (the async stores run the same drivers).
TENANT_BACKENDS = ["memory-tenant", "sqlite-tenant", "postgres-tenant"]
# The contract modules the tenant variants run: every operation that reads or
# writes stored sessions. Input validation, error mapping, watch, reopening and
# the version checks run before or beside the tenant's statements (and the
# statements they run are those of these modules): minutes of CI for nothing.
TENANT_MODULES = (
    "test_changes.py",
    "test_fork_delete_purge.py",
    "test_list_sessions.py",
    "test_load.py",
    "test_path.py",
    "test_reads.py",
    "test_save_delta.py",
    "test_save_reconcile.py",
)
POSTGRES_PARTITIONS = 4
# Sealing is the core's, the same for every driver. By default the sealed
# variants of memory, SQLite and PostgreSQL (as the app role) run the contract
# modules that store and read payloads and metadata (`SEALED_MODULES`); with
# `-m slow` every sealed variant runs the whole contract suite. Input checks,
# error mapping, watch and reopening run before or beside the sealing, and the
# other four sealed variants add only partitioned tables and the generated
# async drivers: about five minutes of CI between them.
SLOW_SEALED_BACKENDS = (
    "postgres-partitioned-sealed",
    "postgres-async-sealed",
    "memory-async-sealed",
    "sqlite-async-sealed",
)
SEALED_MODULES = (*TENANT_MODULES, "test_versions.py")
# The two slowest tests that run once per backend (20-40 s each), on the
# variants whose driver code another variant already runs (the generated async
# driver; partitioned tables under the same statements): with `-m slow`.
SLOW_VARIANT_TESTS = {
    ("test_hostile_values_in_every_argument_get_typed_errors_and_write_nothing", "postgres-async"),
    (
        "test_hostile_values_in_every_argument_get_typed_errors_and_write_nothing",
        "postgres-partitioned",
    ),
    ("test_backend_matches_reference_and_model", "postgres-partitioned"),
}
# The formats (tests/formats) import and export through the sync `Store` API:
# one store per kind of database, not every variant of the drivers.
FORMAT_BACKENDS = ("memory", "sqlite", "postgres")


@dataclass
class Backend:
    """A store under test plus a way to count its raw stored rows."""

    name: str
    url: str
    store: eventlog.Store
    count_rows: Callable[[], int]
    connect: Callable[[str], eventlog.Store]
    # Tenant variants: checks at the end of a test that the other tenant's data is unchanged.
    other_tenant: tenant_backends.OtherTenantCheck | None = None
    # PostgreSQL: the schema holding the tables, which tests that change the
    # stored rows by hand reach as the owner (`admin_url`): `url` may be the app role's.
    schema: str | None = None

    @property
    def admin_url(self) -> str:
        """A URL as the tables' owner (PostgreSQL), else the backend's own."""
        if self.schema is None:
            return self.url
        return pgserver.with_search_path(pgserver.server_dsn(), self.schema)

    def reopen(self) -> eventlog.Store:
        """Close the store and open the same database again (memory keeps its state)."""
        if self.name.startswith("memory"):
            return self.store
        self.store.close()
        self.store = self.connect(self.url)
        return self.store


def _sqlite_row_count(path: Path) -> Callable[[], int]:
    def count() -> int:
        with sqlite3.connect(path) as conn:
            return sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("sessions", "entries", "session_versions")
            )

    return count


def _connect_async(url: str, keyring: eventlog.Keyring | None = None) -> eventlog.Store:
    return sync_store(lambda: eventlog.connect_async(url, keyring=keyring))


def _connect_sync(url: str, keyring: eventlog.Keyring | None = None) -> eventlog.Store:
    return eventlog.connect(url, keyring=keyring)


@cache
def _postgres_schema(partitioned: bool) -> str:
    """A schema of this run for one Postgres variant, migrated once."""
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("partitioned" if partitioned else "plain", empty=True)
    url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    with eventlog.connect(url, partitions=POSTGRES_PARTITIONS if partitioned else None):
        pass
    pgserver.distribute(schema)  # Citus mode: the partitioned tables distributed too
    return schema


@cache
def _app_role_schema() -> tuple[str, str]:
    """A schema of this run and its app role, made once by `eventlog migrate --app-role`."""
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("app_role")
    return schema, app_roles.make_app_role(schema, "contract")


def _open_tenant_backend(name: str, tmp_path: Path) -> Backend:
    """A fresh store for tenant a, beside tenant b's sessions (`tenant_backends`)."""
    tenant, other = tenant_backends.TENANT, tenant_backends.OTHER_TENANT

    def connect(url: str) -> eventlog.Store:
        return eventlog.connect(url, tenant=tenant)

    if name == "memory-tenant":
        seeded = MemoryStore(tenant=other)
        tenant_backends.seed_other_tenant(seeded)
        store = seeded.for_tenant(tenant)
        check = tenant_backends.OtherTenantCheck(
            tenant_backends.snapshot_of(lambda: seeded.for_tenant(other))
        )
        return Backend(name, "memory://", store, store.record_count, connect, check)
    if name == "sqlite-tenant":
        path = tmp_path / "contract.db"
        before = tenant_backends.sqlite_with_other_tenant(path, tmp_path.parent)
        url = f"sqlite:///{path}"
        check = tenant_backends.OtherTenantCheck(
            tenant_backends.snapshot_of(lambda: eventlog.connect(url, tenant=other)), before
        )
        return Backend(name, url, connect(url), _sqlite_row_count(path), connect, check)
    if name == "postgres-tenant":
        shared = tenant_backends.postgres_tenant_schema()
        tenant_backends.empty_tenant(shared.schema, tenant)
        check = tenant_backends.OtherTenantCheck(
            lambda: tenant_backends.tenant_snapshot(shared.other), shared.before
        )
        count = tenant_backends.tenant_row_count(shared.schema, tenant)
        return Backend(name, shared.role_url, connect(shared.role_url), count, connect, check)
    raise AssertionError(name)


def open_backend(name: str, tmp_path: Path) -> Backend:
    """Open a fresh, empty store of one backend."""
    if name in TENANT_BACKENDS:
        return _open_tenant_backend(name, tmp_path)
    keyring = CONTRACT_KEYRING if name.endswith(SEALED_SUFFIX) else None
    base = name.removesuffix(SEALED_SUFFIX)
    kind = base.removesuffix("-async")
    opener = _connect_async if base.endswith("-async") else _connect_sync

    def connect(url: str) -> eventlog.Store:
        return opener(url, keyring)

    if kind == "memory":
        store = connect("memory://")
        inner = store.inner if isinstance(store, SyncFacade) else store
        assert isinstance(inner, MemoryStore | AsyncMemoryStore)
        return Backend(name, "memory://", store, inner.record_count, connect)
    if kind == "sqlite":
        path = tmp_path / "contract.db"
        url = f"sqlite:///{path}"
        return Backend(name, url, connect(url), _sqlite_row_count(path), connect)
    if base == "postgres":  # and postgres-sealed
        schema, role = _app_role_schema()
        pgserver.truncate(schema)  # as the superuser: the app role may not TRUNCATE
        url = app_roles.role_url(role, schema)
        count = partial(pgserver.row_count, schema)
        return Backend(name, url, connect(url), count, connect, schema=schema)
    if kind in ("postgres", "postgres-partitioned"):
        schema = _postgres_schema(kind == "postgres-partitioned")
        pgserver.truncate(schema)
        url = pgserver.with_search_path(pgserver.server_dsn(), schema)
        count = partial(pgserver.row_count, schema)
        return Backend(name, url, connect(url), count, connect, schema=schema)
    raise AssertionError(name)


@pytest.fixture(params=[*BACKENDS, *SEALED_BACKENDS, *TENANT_BACKENDS], name="backend")
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The backend under test, closed after the test; a tenant variant then checks
    that the other tenant's data is unchanged."""
    opened = open_backend(request.param, tmp_path)
    try:
        yield opened
    finally:
        opened.store.close()
    if opened.other_tenant is not None:
        opened.other_tenant.verify()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects what is marked here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tenant variants only in `TENANT_MODULES` of tests/contract, the
    sealed variants only in tests/contract (see `SLOW_SEALED_BACKENDS`), and the
    format tests on `FORMAT_BACKENDS`."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("backend") if callspec is not None else None
        path = item.path
        in_contract = path.parent.name == "contract"
        in_scope = in_contract and path.name in TENANT_MODULES
        out = (
            (variant in TENANT_BACKENDS and not in_scope)
            or (variant in SEALED_BACKENDS and not in_contract)
            or (
                variant is not None
                and path.parent.name == "formats"
                and variant not in FORMAT_BACKENDS
            )
        )
        params = callspec.params if callspec is not None else {}
        if (item.originalname, params.get("backend", params.get("backend_name"))) in (
            SLOW_VARIANT_TESTS
        ):
            item.add_marker(pytest.mark.slow)
        if variant in SLOW_SEALED_BACKENDS or (
            variant in SEALED_BACKENDS and in_contract and path.name not in SEALED_MODULES
        ):
            item.add_marker(pytest.mark.slow)
        (dropped if out else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
