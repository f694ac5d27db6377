"""Tenants through the library (DESIGN.md section 7): the `tenant=` option, memory's
views of one database, watch, stats and retention per tenant, and a pooled
Postgres connection that never carries a tenant to its next borrower.

The contract suite runs on tenant variants of every backend (tests/conftest.py);
these are the parts it does not reach.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import eventlog
from eventlog import Entry, InvalidIdError, SessionDelta
from eventlog._core.watching import watch_key
from eventlog.memory import MemoryStore
from eventlog.retention import delete_idle_sessions
from eventlog.stats import store_stats

BAD_TENANTS: list[Any] = ["", "x" * 256, "nul\x00inside", 7, b"bytes", "\ud800"]


def _turn(text: str, entry_id: str = "e1") -> SessionDelta:
    return SessionDelta([Entry(entry_id, payload={"text": text})], leaf_id=entry_id)


@pytest.mark.parametrize("tenant", BAD_TENANTS)
def test_a_bad_tenant_is_refused_before_anything_opens(tmp_path: Path, tenant: Any) -> None:
    path = tmp_path / "never.db"
    for url in ("memory://", f"sqlite:///{path}", "postgresql://nobody@127.0.0.1:1/none"):
        with pytest.raises(InvalidIdError) as caught:
            eventlog.connect(url, tenant=tenant)
        assert caught.value.where == "tenant"
        with pytest.raises(InvalidIdError):
            asyncio.run(eventlog.connect_async(url, tenant=tenant))
    assert not path.exists()
    with pytest.raises(InvalidIdError):
        MemoryStore().for_tenant(tenant)


def test_memory_views_share_one_database_and_close_alone() -> None:
    first = eventlog.connect("memory://", tenant="a")
    assert isinstance(first, MemoryStore)
    second = first.for_tenant("b")
    default = first.for_tenant(None)
    for store, text in ((first, "a"), (second, "b"), (default, "default")):
        store.save_delta("s", _turn(text))
    first.close()
    assert [entry.payload for entry in second.load("s").entries] == [{"text": "b"}]  # type: ignore[union-attr]
    assert [info.session_id for info in default.list_sessions().items] == ["s"]
    assert second.for_tenant("a").load("s") is not None  # the data outlives the closed view
    # connect opens a new memory each time: another database, not another view.
    assert eventlog.connect("memory://", tenant="b").load("s") is None
    assert "b" in repr(second) and first.tenant == "a" and default.tenant == ""


def test_stats_and_retention_count_and_delete_only_their_tenant(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tenants.db'}"
    with eventlog.connect(url, tenant="a") as a, eventlog.connect(url, tenant="b") as b:
        for n in range(3):
            a.save_delta(f"s{n}", _turn("a"))
        b.save_delta("s0", _turn("b"))
        assert store_stats(a).sessions == 3 and store_stats(b).sessions == 1
        later = datetime.now(UTC) + timedelta(days=2)
        assert delete_idle_sessions(a, timedelta(days=1), now=later) == 3
        assert a.list_sessions().items == []
        assert [info.session_id for info in b.list_sessions().items] == ["s0"]


def _first_change(store: eventlog.Store, session_id: str, out: list[object]) -> None:
    for change in store.watch(session_id):
        out.append(change)
        return


@pytest.mark.parametrize(
    "kind", ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_watcher_sees_only_its_tenants_session(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if kind == "memory":
        a: eventlog.Store = MemoryStore(tenant="a")
        b: eventlog.Store = a.for_tenant("b")  # type: ignore[attr-defined]
    else:
        if kind == "sqlite":
            url = f"sqlite:///{tmp_path / 'watch.db'}"
        else:
            url = request.getfixturevalue("url")
        a, b = eventlog.connect(url, tenant="a"), eventlog.connect(url, tenant="b")
    try:
        a.save_delta("s", _turn("a0"))
        b.save_delta("s", _turn("b0"))
        seen: list[object] = []
        watcher = threading.Thread(target=_first_change, args=(a, "s", seen))
        watcher.start()
        # The watcher starts at version 0: its first change is a's version 1.
        watcher.join(timeout=30)
        assert not watcher.is_alive()
        (change,) = seen
        assert change.version == 1  # type: ignore[attr-defined]
        assert change.appended[0].payload == {"text": "a0"}  # type: ignore[attr-defined]
        # b's later writes of its own "s" show in b's watch, never in a's.
        b.save_delta("s", _turn("b1", "e2"))
        page = a.changes("s", after_version=1)
        assert page.items == []
        assert [c.appended[0].payload for c in b.changes("s", after_version=1).items] == [
            {"text": "b1"}
        ]
    finally:
        a.close()
        b.close()


def test_notifications_name_the_tenant() -> None:
    keys = {watch_key("s"), watch_key("s", "a"), watch_key("s", "b"), watch_key("a/s")}
    assert len(keys) == 4
    assert watch_key("s", "") == watch_key("s")  # the default tenant's keys are as before


@pytest.mark.postgres
def test_a_pooled_connection_never_keeps_a_tenant(url: str) -> None:
    """After every kind of call, and after a failed one, the next borrower has no tenant."""
    with eventlog.connect(url, tenant="a", max_size=1) as store:
        store.save_delta("s", _turn("a"))
        store.load("s")
        store.info("s")
        with pytest.raises(eventlog.ConcurrencyError):
            store.save_delta("s", _turn("a", "e2"), expected_version=9)
        with pytest.raises(eventlog.EventlogError):
            store.fork("s", "s")
        pool = store._pool  # type: ignore[attr-defined]
        with pool.connection() as conn:
            setting = conn.execute("SELECT current_setting('eventlog.tenant', true)").fetchone()
            assert setting[0] in (None, "")


@pytest.mark.postgres
def test_the_store_shows_its_tenant_but_never_its_url(url: str) -> None:
    with eventlog.connect(url, tenant="acme") as store:
        assert repr(store) == "<PostgresStore tenant='acme'>"
