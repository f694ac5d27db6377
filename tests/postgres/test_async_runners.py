"""The async PostgreSQL store's runners under many tasks, loops and threads, and cancellation.

`connect_async` runs a PostgreSQL store's calls on worker threads over the sync
driver (``async_runner="threads"``, the default) or on a loop thread of its own
(``"loop"``). Both must keep the async store's promises: calls from many tasks on
many loops in many threads all land; a cancelled caller's call writes whole or
nothing, leaves no transaction open and gives its connection back, so that a
pool of one serves the next call while the cancelled one's lock is still held
elsewhere; a call cancelled before it reached the database never writes.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import app_roles
import pgserver
import psycopg
import pytest

import eventlog
from eventlog import Entry, SessionDelta

RUNNERS = ["threads", "loop"]
# A bound on waits that only a broken store reaches (never a timing assertion).
HANG_S = 30.0

_LOCK_S = "SELECT 1 FROM sessions WHERE session_id = 's' FOR UPDATE"


def _named(url: str) -> tuple[str, str]:
    """The URL with an application name of its own, and that name."""
    name = f"eventlog-runner-{secrets.token_hex(4)}"
    return f"{url}&application_name={name}", name


def _in_transaction(admin: psycopg.Connection[Any], name: str) -> int:
    row = admin.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
        "AND state LIKE 'idle in transaction%%'",
        (name,),
    ).fetchone()
    assert row is not None
    return int(row[0])


async def _cancel(call: asyncio.Future[Any]) -> None:
    """Cancel `call` and wait for it to end (a bound, not a timing check): it ends cancelled."""
    call.cancel()
    await asyncio.wait([call], timeout=HANG_S)
    assert call.done(), "the cancelled call never ended"
    assert call.cancelled()


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(int(HANG_S / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.parametrize("runner", RUNNERS)
def test_tasks_on_loops_in_several_threads_share_one_store_and_lose_nothing(
    url: str, runner: str
) -> None:
    store = asyncio.run(eventlog.connect_async(url, min_size=2, max_size=4, async_runner=runner))
    threads, tasks, turns = 4, 16, 6

    def thread_main(thread: int) -> None:
        async def agent(index: int) -> None:
            parent = None
            for turn in range(turns):
                entry = Entry(f"e{turn}", parent, "message", None, {"turn": turn})
                await store.save_delta(
                    f"own-{thread}-{index}", SessionDelta([entry], leaf_id=entry.id)
                )
                await store.save_delta("shared", SessionDelta([Entry(f"{thread}-{index}-{turn}")]))
                parent = entry.id

        async def main() -> None:
            await asyncio.gather(*(agent(index) for index in range(tasks)))

        asyncio.run(main())  # a loop of this thread's own

    try:
        with ThreadPoolExecutor(threads) as pool:
            for done in [pool.submit(thread_main, thread) for thread in range(threads)]:
                done.result(timeout=120)

        async def check() -> None:
            for thread in range(threads):
                for index in range(tasks):
                    info = await store.info(f"own-{thread}-{index}")
                    assert info is not None and (info.entry_count, info.version) == (turns, turns)
            shared = await store.load("shared")
            assert shared is not None
            ids = [entry.id for entry in shared.entries]
            assert len(ids) == len(set(ids)) == threads * tasks * turns
            assert shared.version == threads * tasks * turns

        asyncio.run(check())
    finally:
        asyncio.run(store.close())


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_call_cancelled_while_it_waits_for_a_lock_frees_its_connection_and_writes_nothing(
    url: str, admin: psycopg.Connection[Any], runner: str
) -> None:
    own_url, name = _named(url)

    async def scenario() -> None:
        async with await eventlog.connect_async(
            own_url, min_size=1, max_size=1, timeout=5, async_runner=runner
        ) as store:
            await store.save_delta("s", SessionDelta([Entry("a")], leaf_id="a"))
            with psycopg.connect(url) as holder:  # a transaction holding the session's row
                holder.execute(_LOCK_S)
                call = asyncio.ensure_future(
                    store.save_delta("s", SessionDelta([Entry("b", "a")], leaf_id="b"))
                )
                await _until(
                    lambda: bool(pgserver.lock_waiting_pids(admin, name)), "the call waits"
                )
                await _cancel(call)
                # The lock is still held, and the pool's one connection serves the next call.
                assert not pgserver.lock_waiting_pids(admin, name)
                assert _in_transaction(admin, name) == 0
                await store.save_delta("t", SessionDelta([Entry("a")]))
                holder.rollback()
            loaded = await store.load("s")
            assert loaded is not None
            assert ([entry.id for entry in loaded.entries], loaded.version) == (["a"], 1)

    asyncio.run(scenario())


@pytest.mark.parametrize("role", ["owner", "app role"])
def test_many_calls_cancelled_behind_a_lock_leave_the_pool_to_the_next_calls(
    url: str, admin: psycopg.Connection[Any], schema: str, role: str
) -> None:
    # The threads runner only. On the loop runner psycopg sends one cancel request,
    # lost when it reaches the server before the statement; as the app role (its
    # statements go in a pipeline, with the tenant setting) a cancelled caller then
    # waited for the lock in 2 runs of 4 here. The owner skips row-level security,
    # so its one-statement calls go without a pipeline.
    store_url = url
    if role == "app role":
        store_url = app_roles.role_url(app_roles.make_app_role(schema, "cancel"), schema)
    own_url, name = _named(store_url)
    pool, calls = 2, 12

    async def scenario() -> None:
        async with await eventlog.connect_async(
            own_url, min_size=pool, max_size=pool, timeout=5
        ) as store:
            for n in range(calls):
                await store.save_delta(f"s{n}", SessionDelta([Entry("a")], leaf_id="a"))
            with psycopg.connect(url) as holder:  # every session's row
                holder.execute("SELECT 1 FROM sessions FOR UPDATE")
                waiting = [
                    asyncio.ensure_future(
                        store.save_delta(f"s{n}", SessionDelta([Entry("b", "a")], leaf_id="b"))
                    )
                    for n in range(calls)
                ]
                await _until(
                    lambda: len(pgserver.lock_waiting_pids(admin, name)) == pool, "the pool waits"
                )
                for call in waiting:
                    await _cancel(call)
                # Still locked: the pool serves other sessions, every connection again.
                await asyncio.gather(
                    *(store.save_delta(f"t{n}", SessionDelta([Entry("a")])) for n in range(calls))
                )
                assert _in_transaction(admin, name) == 0
                holder.rollback()
            for n in range(calls):
                info = await store.info(f"s{n}")
                assert info is not None and (info.version, info.leaf_id) == (1, "a")

    asyncio.run(scenario())


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_call_cancelled_before_it_started_never_writes(
    url: str, admin: psycopg.Connection[Any], runner: str
) -> None:
    own_url, name = _named(url)

    async def scenario() -> None:
        async with await eventlog.connect_async(
            own_url, min_size=1, max_size=1, async_runner=runner
        ) as store:
            await store.save_delta("s", SessionDelta([Entry("a")], leaf_id="a"))
            with psycopg.connect(url) as holder:
                holder.execute(_LOCK_S)
                first = asyncio.ensure_future(
                    store.save_delta("s", SessionDelta([Entry("b", "a")], leaf_id="b"))
                )
                await _until(
                    lambda: bool(pgserver.lock_waiting_pids(admin, name)), "the first call waits"
                )
                # Queued behind the first (for the one worker, or the one connection).
                second = asyncio.ensure_future(store.save_delta("u", SessionDelta([Entry("a")])))
                await asyncio.sleep(0.05)
                await _cancel(second)
                holder.rollback()
            assert (await first).appended == ("b",)
            await store.save_delta("v", SessionDelta([Entry("a")]))  # after anything queued
            assert await store.info("u") is None

    asyncio.run(scenario())


def test_a_call_cancelled_while_it_waits_for_a_pooled_connection_gives_it_back_unused(
    url: str,
) -> None:
    async def scenario() -> None:
        store: Any = await eventlog.connect_async(url, min_size=1, max_size=1)
        try:
            pool = store.sync._pool
            held = await asyncio.to_thread(pool.getconn)  # the pool's only connection
            call = asyncio.ensure_future(store.save_delta("u", SessionDelta([Entry("a")])))
            await _until(lambda: pool.get_stats().get("requests_waiting", 0) > 0, "it waits")
            await _cancel(call)
            await asyncio.to_thread(pool.putconn, held)
            # The abandoned worker takes the connection first and gives it back unused.
            await store.save_delta("v", SessionDelta([Entry("a")]))
            assert await store.info("u") is None
        finally:
            await store.close()

    asyncio.run(scenario())


def test_close_from_another_thread_lets_the_running_call_land_and_refuses_the_queued_ones(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    own_url, name = _named(url)

    async def scenario() -> None:
        store = await eventlog.connect_async(own_url, min_size=1, max_size=1)
        await store.save_delta("s", SessionDelta([Entry("a")], leaf_id="a"))
        with psycopg.connect(url) as holder:
            holder.execute(_LOCK_S)
            running = asyncio.ensure_future(
                store.save_delta("s", SessionDelta([Entry("b", "a")], leaf_id="b"))
            )
            await _until(lambda: bool(pgserver.lock_waiting_pids(admin, name)), "it runs")
            queued = [
                asyncio.ensure_future(store.save_delta(f"q{n}", SessionDelta([Entry("a")])))
                for n in range(3)
            ]
            await asyncio.sleep(0.05)
            closer = threading.Thread(target=lambda: asyncio.run(store.close()))
            closer.start()
            outcomes = await asyncio.gather(*queued, return_exceptions=True)
            assert all(isinstance(o, eventlog.StoreUnavailableError) for o in outcomes)
            holder.rollback()
        assert (await running).appended == ("b",)
        await asyncio.to_thread(closer.join, HANG_S)
        assert not closer.is_alive()
        with pytest.raises(eventlog.StoreUnavailableError):
            await store.info("s")

    asyncio.run(scenario())
    with eventlog.connect(url) as plain:
        loaded = plain.load("s")
        assert loaded is not None and [entry.id for entry in loaded.entries] == ["a", "b"]
        assert all(plain.info(f"q{n}") is None for n in range(3))


def test_the_threads_runner_keeps_tenants_sealing_and_the_snapshot_memo(
    url: str, admin: psycopg.Connection[Any], schema: str
) -> None:
    keyring = eventlog.Keyring({"k": secrets.token_bytes(32)}, active="k")
    secret = f"secret-{secrets.token_hex(8)}"
    snapshot = eventlog.SessionData([Entry("a", None, "message", None, {"text": secret})], "a")

    async def scenario() -> None:
        async with (
            await eventlog.connect_async(url, tenant="a", keyring=keyring) as store_a,
            await eventlog.connect_async(url, tenant="b", keyring=keyring) as store_b,
        ):
            await store_a.save("s", snapshot)
            memo = store_a._snapshot_memo  # type: ignore[attr-defined]
            assert memo is not None and memo.encodings("s") is not None
            assert await store_b.load("s") is None
            loaded = await store_a.load("s")
            assert loaded is not None and loaded.entries == snapshot.entries
            rows = admin.execute(f"SELECT payload FROM {schema}.entries").fetchall()
            assert rows and all(secret.encode() not in bytes(row[0]) for row in rows)
            assert await store_a.delete("s") is True
            assert memo.encodings("s") is None  # a delete forgets the payloads

    asyncio.run(scenario())
