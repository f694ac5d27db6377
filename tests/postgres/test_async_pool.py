"""The async Postgres store under load: pool limits, dropped connections, many tasks."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import psycopg
import pytest
from structlog.testing import capture_logs

import eventlog
from eventlog import Entry, SessionDelta


@pytest.mark.parametrize("runner", ["threads", "loop"])
def test_an_exhausted_pool_raises_after_the_timeout_instead_of_hanging(
    url: str, runner: str
) -> None:
    async def scenario() -> float:
        store: Any = await eventlog.connect_async(
            url, min_size=1, max_size=1, timeout=0.5, async_runner=runner
        )
        # The only connection, taken by someone else (where the store's pool lives).
        if runner == "threads":
            held = await asyncio.to_thread(store.sync._pool.getconn)
            give_back = partial(asyncio.to_thread, store.sync._pool.putconn, held)
        else:
            held = await store._home.run(store._pool.getconn())
            give_back = partial(store._home.run, store._pool.putconn(held))
        try:
            started = time.perf_counter()
            with pytest.raises(eventlog.StoreUnavailableError):
                await store.load("s")
            return time.perf_counter() - started
        finally:
            await give_back()
            await store.close()

    waited = asyncio.run(scenario())
    assert 0.4 < waited < 5


@asynccontextmanager
async def _store_whose_connections_died(
    url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> AsyncIterator[eventlog.AsyncStore]:
    """A store that wrote "a" to sessions s0..s2, then lost every pooled connection,
    as in a server restart or an idle timeout."""
    name = f"eventlog-drop-{secrets.token_hex(4)}"
    own_url = f"{url}&application_name={name}"
    async with await eventlog.connect_async(own_url, min_size=3, max_size=3) as store:
        await asyncio.gather(
            *(store.save_delta(f"s{i}", SessionDelta([Entry("a")])) for i in range(3))
        )
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            (name,),
        ).fetchone()
        assert killed is not None and killed[0] >= 1
        await asyncio.sleep(0.2)
        yield store


def test_connections_dropped_by_the_server_are_replaced_without_errors(
    url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    async def scenario() -> list[dict[str, object]]:
        async with _store_whose_connections_died(url, admin) as store:
            with capture_logs() as logs:
                loaded = await asyncio.gather(*(store.load(f"s{i}") for i in range(3)))
            assert all(data is not None and data.entries[0].id == "a" for data in loaded)
            return logs

    logs = asyncio.run(scenario())
    assert any(line["event"] == "postgres.stale_connection_replaced" for line in logs)
    assert all(
        line["log_level"] == "warning"
        for line in logs
        if line["event"] == "postgres.stale_connection_replaced"
    )


def test_appends_after_the_server_dropped_every_connection_land_without_errors(
    url: str, admin: psycopg.Connection[tuple[object, ...]]
) -> None:
    # The store wrote these sessions last, so their next appends would go out
    # without a read; on a connection the server dropped, that write must not
    # be tried (its outcome would be unknown): the read path replaces it.
    async def scenario() -> list[dict[str, object]]:
        async with _store_whose_connections_died(url, admin) as store:
            with capture_logs() as logs:
                results = await asyncio.gather(
                    *(
                        store.save_delta(f"s{i}", SessionDelta([Entry("b", "a")], leaf_id="b"))
                        for i in range(3)
                    )
                )
            assert all(result.appended == ("b",) for result in results)
            loaded = await asyncio.gather(*(store.load(f"s{i}") for i in range(3)))
            assert all(
                data is not None and [entry.id for entry in data.entries] == ["a", "b"]
                for data in loaded
            )
            return logs

    logs = asyncio.run(scenario())
    assert any(line["event"] == "postgres.stale_connection_replaced" for line in logs)


@pytest.mark.parametrize("runner", ["threads", "loop"])
def test_two_hundred_tasks_through_ten_connections_lose_nothing(url: str, runner: str) -> None:
    async def scenario() -> list[eventlog.SessionInfo]:
        async with await eventlog.connect_async(
            url, min_size=2, max_size=10, async_runner=runner
        ) as store:

            async def agent(index: int) -> None:
                parent = None
                for turn in range(20):
                    entry = Entry(f"t{turn}", parent, "message", None, {"turn": turn})
                    await store.save_delta(
                        f"agent-{index:03d}", SessionDelta([entry], leaf_id=entry.id)
                    )
                    parent = entry.id

            await asyncio.gather(*(agent(index) for index in range(200)))
            items: list[eventlog.SessionInfo] = []
            cursor = None
            while True:
                page = await store.list_sessions(prefix="agent-", cursor=cursor)
                items += page.items
                if page.next_cursor is None:
                    return items
                cursor = page.next_cursor

    items = asyncio.run(scenario())
    assert len(items) == 200
    assert {(info.entry_count, info.version) for info in items} == {(20, 20)}
