"""Imports, exports and the framework integrations are per tenant (DESIGN.md 7).

Two tenants of one database use the same session ids through each integration
and each format: each reads back only what it wrote, and a tenant that wrote
nothing finds nothing. On PostgreSQL both connect as the app role, under
row-level security. The integrations hold no tenant of their own: they use the
store they are given, and these tests would catch one that opened its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import app_roles
import pgserver
import pytest

import eventlog
from eventlog import Entry, SessionData, SessionDelta
from eventlog.formats import export_file, import_file

TENANTS = ("acme", "globex")


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database both tenants share; on PostgreSQL as the app role."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("tenant_integrations")
    role = app_roles.make_app_role(schema, "tenant_integrations")
    yield app_roles.role_url(role, schema)
    app_roles.drop_role(role)


def test_import_and_export_are_per_tenant(url: str, tmp_path: Path) -> None:
    for tenant in TENANTS:
        with eventlog.connect(url, tenant=tenant) as store:
            entries = [Entry("a", payload={"of": tenant}), Entry("b", "a", payload={"n": 1})]
            store.save_delta("s", SessionDelta(entries, leaf_id="b", metadata={"t": tenant}))
            export_file(store, "jsonl", "s", tmp_path / f"{tenant}.jsonl")
    # Each tenant's export holds its own session; imported into the other tenant
    # under a new id, it lands there and nowhere else.
    with eventlog.connect(url, tenant=TENANTS[1]) as store:
        import_file(store, "jsonl", tmp_path / f"{TENANTS[0]}.jsonl", session_id="copy")
        copied, own = store.load("copy"), store.load("s")
        assert copied is not None and copied.entries[0].payload == {"of": TENANTS[0]}
        assert own is not None and own.entries[0].payload == {"of": TENANTS[1]}
    with eventlog.connect(url, tenant=TENANTS[0]) as store:
        assert store.load("copy") is None
        assert [info.session_id for info in store.list_sessions().items] == ["s"]
    with eventlog.connect(url) as store:  # the default tenant holds nothing
        assert store.list_sessions().items == []


def test_openai_agents_sessions_are_per_tenant(url: str) -> None:
    pytest.importorskip("agents")
    from eventlog.integrations.openai_agents import EventlogSession

    async def main() -> list[list[Any]]:
        seen = []
        for tenant in TENANTS:
            store = await eventlog.connect_async(url, tenant=tenant)
            try:
                session = EventlogSession("chat", store)
                await session.add_items([{"role": "user", "content": f"hello from {tenant}"}])
                seen.append(await session.get_items())
            finally:
                await store.close()
        store = await eventlog.connect_async(url, tenant="initech")
        try:
            seen.append(await EventlogSession("chat", store).get_items())
        finally:
            await store.close()
        return seen

    acme, globex, nobody = asyncio.run(main())
    assert [item["content"] for item in acme] == ["hello from acme"]
    assert [item["content"] for item in globex] == ["hello from globex"]
    assert nobody == []


def test_langgraph_threads_are_per_tenant(url: str) -> None:
    pytest.importorskip("langgraph")
    from langgraph.checkpoint.base import empty_checkpoint

    from eventlog.integrations.langgraph import EventlogSaver

    config: Any = {"configurable": {"thread_id": "thread", "checkpoint_ns": ""}}
    for tenant in TENANTS:
        with eventlog.connect(url, tenant=tenant) as store:
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"who": tenant}
            checkpoint["channel_versions"] = {"who": f"{1:032}.0"}
            EventlogSaver(store).put(config, checkpoint, {"step": 0}, {"who": f"{1:032}.0"})
    for tenant in TENANTS:
        with eventlog.connect(url, tenant=tenant) as store:
            saved = EventlogSaver(store).get_tuple(config)
            assert saved is not None and saved.checkpoint["channel_values"] == {"who": tenant}
    with eventlog.connect(url, tenant="initech") as store:
        assert EventlogSaver(store).get_tuple(config) is None
        assert list(EventlogSaver(store).list(None)) == []


def test_adk_sessions_are_per_tenant(url: str) -> None:
    pytest.importorskip("google.adk")
    from google.adk.events.event import Event
    from google.genai import types

    from eventlog.integrations.adk import EventlogSessionService

    async def main() -> list[Any]:
        seen = []
        for tenant in TENANTS:
            store = await eventlog.connect_async(url, tenant=tenant)
            try:
                service = EventlogSessionService(store)
                session = await service.create_session(
                    app_name="app", user_id="u", session_id="s", state={"who": tenant}
                )
                text = types.Content(role="user", parts=[types.Part(text=f"hi from {tenant}")])
                await service.append_event(session, Event(author="user", content=text))
            finally:
                await store.close()
        for tenant in (*TENANTS, "initech"):
            store = await eventlog.connect_async(url, tenant=tenant)
            try:
                service = EventlogSessionService(store)
                found = await service.get_session(app_name="app", user_id="u", session_id="s")
                listed = await service.list_sessions(app_name="app", user_id="u")
                seen.append((found, [s.id for s in listed.sessions]))
            finally:
                await store.close()
        return seen

    acme, globex, nobody = asyncio.run(main())
    for tenant, (found, listed) in zip(TENANTS, (acme, globex), strict=True):
        assert found is not None and found.state == {"who": tenant}
        assert [event.content.parts[0].text for event in found.events] == [f"hi from {tenant}"]
        assert listed == ["s"]
    assert nobody == (None, [])


def test_a_snapshot_saved_by_one_tenant_leaves_the_others_session(url: str) -> None:
    # `save` tombstones what its snapshot lacks: only in its own tenant.
    for tenant in TENANTS:
        with eventlog.connect(url, tenant=tenant) as store:
            store.save_delta("s", SessionDelta([Entry("a"), Entry("b", "a")], leaf_id="b"))
    with eventlog.connect(url, tenant=TENANTS[0]) as store:
        store.save("s", SessionData([Entry("z")], leaf_id="z"))
        assert _ids(store.load("s")) == ["z"]
    with eventlog.connect(url, tenant=TENANTS[1]) as store:
        assert _ids(store.load("s")) == ["a", "b"]


def _ids(data: SessionData | None) -> list[str]:
    assert data is not None
    return [entry.id for entry in data.entries]
