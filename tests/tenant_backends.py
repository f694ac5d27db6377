"""Tenant variants of the backends: the contract suite on a store for tenant "a"
of a database where tenant "b" already holds sessions with the same session and
entry ids the suite uses.

At the end of each test the fixture checks that tenant b's data is unchanged,
byte for byte: every session's info, raw load and raw change feed, and its
`list_sessions` pages. On PostgreSQL the store connects as the app role
`eventlog migrate --app-role` makes, so row-level security applies to it (a
superuser skips RLS): a statement that forgot the tenant's setting would read
nothing.
"""

from __future__ import annotations

import atexit
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import app_roles
import pgserver
import psycopg

import eventlog
from eventlog import Entry, SessionDelta

TENANT = "a"
OTHER_TENANT = "b"
# Session ids the contract suite writes, each of them held by tenant b too.
_SHARED_SESSION_IDS = ("session-1", "s", "one", "two", "other", "a", "f", "fork")


def seed_other_tenant(store: eventlog.Store) -> None:
    """Tenant b's sessions: the suite's ids, with history, tombstones and metadata."""
    for sid in _SHARED_SESSION_IDS:
        entries = [Entry("a", payload={"of": "b"}), Entry("b", "a", payload={"of": "b", "n": 2})]
        entries += [Entry(name, "b", payload={"of": "b"}) for name in ("c", "d", "x", "n1")]
        store.save_delta(sid, SessionDelta(entries, leaf_id="c", metadata={"tenant": "b"}))
        store.save_delta(sid, SessionDelta(removed_entry_ids=["d"], leaf_id="c"))


def tenant_snapshot(store: eventlog.Store) -> list[Any]:
    """Everything a store shows of its tenant, to compare byte for byte."""
    seen: list[Any] = []
    cursor: str | None = None
    while True:
        page = store.list_sessions(limit=7, cursor=cursor)
        seen.append(page)
        for info in page.items:
            sid = info.session_id
            seen += [store.info(sid), store.load(sid, raw=True)]
            after = 0
            while True:
                changes = store.changes(sid, after_version=after, raw=True)
                seen.append(changes)
                if changes.next_version is None:
                    break
                after = changes.next_version
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


@cache
def _sqlite_template(folder: str) -> tuple[Path, list[Any]]:
    """A SQLite file holding tenant b's sessions, made once and copied for each
    test, and tenant b's snapshot of it."""
    path = Path(folder) / "tenant-b-template.db"
    with eventlog.connect(f"sqlite:///{path}", tenant=OTHER_TENANT) as store:
        seed_other_tenant(store)
        return path, tenant_snapshot(store)


def sqlite_with_other_tenant(path: Path, template_folder: Path) -> list[Any]:
    """A fresh copy of the seeded file at `path`; returns tenant b's snapshot of it."""
    template, snapshot = _sqlite_template(str(template_folder))
    shutil.copyfile(template, path)
    return snapshot


class PostgresTenants(NamedTuple):
    schema: str
    role_url: str
    # A store of tenant b, open for the run, and its snapshot after seeding.
    other: eventlog.Store
    before: list[Any]


@cache
def postgres_tenant_schema() -> PostgresTenants:
    """A migrated schema where tenant b holds its sessions, and its app role.

    The schema and the role are made by `eventlog migrate --app-role`
    (`app_roles`): the role has only the app role's rights, and row-level
    security applies to it. Tenant b's rows are written once: no test of
    tenant a may change them.
    """
    schema = pgserver.make_schema("tenants")
    role_url = app_roles.role_url(app_roles.make_app_role(schema, "tenants"), schema)
    other = eventlog.connect(role_url, tenant=OTHER_TENANT, max_size=1)
    atexit.register(other.close)
    seed_other_tenant(other)
    return PostgresTenants(schema, role_url, other, tenant_snapshot(other))


def empty_tenant(schema: str, tenant: str) -> None:
    """Delete one tenant's rows (as the superuser): the others stay."""
    with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
        for table in ("entries", "session_versions", "sessions"):
            conn.execute(f"DELETE FROM {schema}.{table} WHERE tenant = %s", (tenant,))


def tenant_row_count(schema: str, tenant: str) -> Callable[[], int]:
    def count() -> int:
        with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
            row = conn.execute(
                f"SELECT (SELECT count(*) FROM {schema}.sessions WHERE tenant = %(t)s) + "
                f"(SELECT count(*) FROM {schema}.entries WHERE tenant = %(t)s) + "
                f"(SELECT count(*) FROM {schema}.session_versions WHERE tenant = %(t)s)",
                {"t": tenant},
            ).fetchone()
        assert row is not None
        return int(row[0])

    return count


class OtherTenantCheck:
    """Tenant b's data as a test starts; `verify` says it is the same when it ends.

    Args:
        snapshot: `tenant_snapshot` of a store of tenant b.
        before: the snapshot when the test starts, if known (a seeded copy).
    """

    def __init__(self, snapshot: Callable[[], list[Any]], before: list[Any] | None = None) -> None:
        self._snapshot = snapshot
        self._before = snapshot() if before is None else before
        assert self._before[0].items, "tenant b holds no sessions"

    def verify(self) -> None:
        """Raise AssertionError unless tenant b shows exactly what it showed before."""
        assert self._snapshot() == self._before, "the store of tenant a changed tenant b's data"


def snapshot_of(open_other: Callable[[], eventlog.Store]) -> Callable[[], list[Any]]:
    """`tenant_snapshot` of a store opened for it and closed after."""

    def take() -> list[Any]:
        with open_other() as other:
            return tenant_snapshot(other)

    return take


__all__ = [
    "OTHER_TENANT",
    "TENANT",
    "OtherTenantCheck",
    "PostgresTenants",
    "empty_tenant",
    "postgres_tenant_schema",
    "seed_other_tenant",
    "snapshot_of",
    "sqlite_with_other_tenant",
    "tenant_row_count",
    "tenant_snapshot",
]
