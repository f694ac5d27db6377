"""The store sends the tenant's setting only where row-level security applies.

A role that skips row-level security (a superuser, BYPASSRLS) gains nothing
from `eventlog.tenant`, so its statements go without it, and without the
pipeline that carries it (`_postgres.driver._in_tenant`). The app role must
keep it: found when the store opens, and a store that wrongly believed its role
skips the policies fails closed (the policies see no tenant: no row is read,
none written), never showing or taking another tenant's rows.
"""

from __future__ import annotations

from typing import Any

import pgserver
import psycopg
import pytest

import eventlog
from eventlog import AccessDeniedError, Entry, SessionDelta
from eventlog.postgres import PostgresStore

from .conftest import AppSchema

pytestmark = pytest.mark.postgres


def _turn(store: eventlog.Store, session_id: str, entry_id: str) -> None:
    store.save_delta(
        session_id,
        SessionDelta([Entry(entry_id, payload={"who": session_id})], leaf_id=entry_id),
    )


def _opened(url: str, **options: Any) -> PostgresStore:
    store = eventlog.connect(url, notify=False, **options)
    assert isinstance(store, PostgresStore)
    return store


def test_the_app_role_sets_the_tenant_and_the_owner_does_not_need_to(empty: AppSchema) -> None:
    with _opened(empty.url, tenant="A") as as_role, _opened(empty.owner_url) as as_owner:
        assert as_role._rls is True
        assert as_owner._rls is False
        _turn(as_role, "s", "a0")
        _turn(as_owner, "s", "d0")  # the default tenant's own session of that id
        loaded_a, loaded_default = as_role.load("s"), as_owner.load("s")
    assert loaded_a is not None and [e.id for e in loaded_a.entries] == ["a0"]
    assert loaded_default is not None and [e.id for e in loaded_default.entries] == ["d0"]


def test_broken_variant_an_app_role_store_without_the_setting_fails_closed(
    empty: AppSchema, as_owner: psycopg.Connection[Any]
) -> None:
    """What a wrong detection would do: refuse and see nothing, never cross tenants."""
    with _opened(empty.url, tenant="A") as right:
        _turn(right, "s", "a0")
    count = as_owner.execute(f"SELECT count(*) FROM {empty.schema}.entries").fetchone()
    with _opened(empty.url, tenant="A") as wrong:
        wrong._rls = False
        # The one-statement reads and writes are those that skip the setting.
        assert wrong.info("s") is None  # the policies see no tenant: no row
        assert wrong.entry("s", "a0") is None
        assert wrong.scan("s", id_prefix="") == []
        with pytest.raises(AccessDeniedError):
            _turn(wrong, "new", "x0")
    assert as_owner.execute(f"SELECT count(*) FROM {empty.schema}.entries").fetchone() == count


def test_a_superuser_store_still_names_its_tenant_in_every_statement() -> None:
    """Without the policies to back it, the queries' own tenant filter keeps tenants apart."""
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("rls_detection_owner")
    url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    with _opened(url, tenant="A") as a, _opened(url, tenant="B") as b:
        assert a._rls is False and b._rls is False
        _turn(a, "s", "a0")
        _turn(b, "s", "b0")
        loaded_a, loaded_b = a.load("s"), b.load("s")
        listed = [info.session_id for info in a.list_sessions().items]
    assert loaded_a is not None and [e.id for e in loaded_a.entries] == ["a0"]
    assert loaded_b is not None and [e.id for e in loaded_b.entries] == ["b0"]
    assert listed == ["s"]
