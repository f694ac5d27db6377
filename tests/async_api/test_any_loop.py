"""An async store opened under one event loop works under every other, and in threads.

As ``asyncio.run`` per call (the OpenAI Agents SDK's ``Runner.run_sync``) and
threads that each run their own loop use it; it closes from any of them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pgserver
import pytest

import eventlog
from eventlog import Entry, SessionDelta

T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite", "postgres", "postgres-loop"])
def connect(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[], Coroutine[Any, Any, eventlog.AsyncStore]]:
    """Opens the store; "postgres-loop" is PostgreSQL on the loop runner (``async_runner``)."""
    if request.param == "memory":
        return partial(eventlog.connect_async, "memory://")
    if request.param == "sqlite":
        return partial(eventlog.connect_async, f"sqlite:///{tmp_path / 'loops.db'}")
    pgserver.dsn_or_skip()
    url = pgserver.with_search_path(pgserver.server_dsn(), pgserver.make_schema("any_loop"))
    runner = "loop" if request.param == "postgres-loop" else "threads"
    return partial(eventlog.connect_async, url, async_runner=runner)


def _on_a_new_loop(call: Awaitable[T]) -> T:
    async def main() -> T:
        return await call

    return asyncio.run(main())


def _append(store: eventlog.AsyncStore, session_id: str, entry_id: str) -> None:
    _on_a_new_loop(store.save_delta(session_id, SessionDelta([Entry(entry_id)])))


def test_calls_from_fresh_loops_and_threads_all_land_and_close_works_anywhere(
    connect: Callable[[], Coroutine[Any, Any, eventlog.AsyncStore]],
) -> None:
    store = _on_a_new_loop(connect())
    for index in range(10):
        _append(store, "loops", f"e{index}")

    def agent(thread: int) -> None:
        for index in range(5):
            _append(store, f"thread-{thread}", f"e{index}")

    threads = [threading.Thread(target=agent, args=(thread,)) for thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"

    loaded = _on_a_new_loop(store.load("loops"))
    assert loaded is not None and [entry.id for entry in loaded.entries] == [
        f"e{index}" for index in range(10)
    ]
    for thread in range(4):
        info = _on_a_new_loop(store.load(f"thread-{thread}"))
        assert info is not None and len(info.entries) == 5
    _on_a_new_loop(store.close())  # a loop of its own: neither the opener's nor a caller's
    with pytest.raises(eventlog.StoreUnavailableError):
        _on_a_new_loop(store.load("loops"))


def test_a_store_closed_in_a_thread_refuses_later_calls_without_hanging(
    connect: Callable[[], Coroutine[Any, Any, eventlog.AsyncStore]],
) -> None:
    store = _on_a_new_loop(connect())
    _append(store, "s", "a")
    closer = threading.Thread(target=lambda: _on_a_new_loop(store.close()))
    closer.start()
    closer.join(timeout=30)
    assert not closer.is_alive()
    with pytest.raises(eventlog.StoreUnavailableError):
        _append(store, "s", "b")
