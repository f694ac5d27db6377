"""`EventlogSession` under concurrent writers: every added item lands once, in one chain."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pgserver
import pytest

pytest.importorskip("agents")

from agents.items import TResponseInputItem

import eventlog
from eventlog import AsyncStore, Entry
from eventlog.integrations.openai_agents import EventlogSession

T = TypeVar("T")


@pytest.fixture(scope="module")
def _pg_schema() -> str:
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("openai_agents")
    with eventlog.connect(pgserver.with_search_path(pgserver.server_dsn(), schema)):
        pass
    return schema


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agents.db'}"
    schema: str = request.getfixturevalue("_pg_schema")
    pgserver.truncate(schema)
    return pgserver.with_search_path(pgserver.server_dsn(), schema)


def _on_store(url: str, body: Callable[[AsyncStore], Awaitable[T]]) -> T:
    async def main() -> T:
        store = await eventlog.connect_async(url)
        try:
            return await body(store)
        finally:
            await store.close()

    return asyncio.run(main())


def _user(text: str) -> TResponseInputItem:
    return {"role": "user", "content": text}


async def _chain(store: AsyncStore, session_id: str) -> list[str]:
    """The stored conversation's texts, after checking it is one chain ending at the leaf."""
    data = await store.load(session_id)
    assert data is not None
    entries: list[Entry] = data.entries
    # One chain: each entry's parent is the entry before it, and the leaf is the last.
    assert [entry.parent_id for entry in entries] == [None, *[e.id for e in entries[:-1]]]
    assert data.leaf_id == entries[-1].id
    return [entry.payload["content"] for entry in entries]


def _check_callers_order(texts: list[str], callers: dict[str, list[str]]) -> None:
    """Every caller's items land exactly once, in that caller's order."""
    assert len(texts) == len(set(texts)) == sum(len(sent) for sent in callers.values())
    position = {text: index for index, text in enumerate(texts)}
    for sent in callers.values():
        assert [position[text] for text in sent] == sorted(position[text] for text in sent)


@pytest.mark.parametrize("calls", [200, 500])
def test_concurrent_add_items_on_one_session_all_land_once_in_order(url: str, calls: int) -> None:
    async def body(store: AsyncStore) -> None:
        # Several session objects on one store, as an app holding one per request would.
        sessions = [EventlogSession("chat", store) for _ in range(4)]
        await asyncio.gather(
            *(sessions[n % 4].add_items([_user(f"{n}-a"), _user(f"{n}-b")]) for n in range(calls))
        )
        texts = await _chain(store, "chat")
        _check_callers_order(texts, {str(n): [f"{n}-a", f"{n}-b"] for n in range(calls)})
        # The items of one call sit next to each other.
        for n in range(calls):
            assert texts.index(f"{n}-b") == texts.index(f"{n}-a") + 1
        assert [item["content"] for item in await sessions[0].get_items()] == texts  # type: ignore[typeddict-item]

    _on_store(url, body)


def test_add_items_from_threads_each_with_its_own_loop_and_store_all_land(url: str) -> None:
    threads, tasks, adds = 4, 25, 3
    shared: list[AsyncStore] = []
    if url == "memory://":
        # A memory store lives in one process object: the threads share it, each on its loop.
        shared.append(asyncio.run(eventlog.connect_async(url)))
    # A thread that fails before the barrier breaks it, so the others fail instead of waiting.
    barrier = threading.Barrier(threads, timeout=120)
    errors: list[BaseException] = []

    async def writer(thread: int) -> None:
        store = shared[0] if shared else await eventlog.connect_async(url)
        try:
            session = EventlogSession("chat", store)

            async def task(number: int) -> None:
                for add in range(adds):
                    await session.add_items([_user(f"{thread}.{number}.{add}")])

            barrier.wait()
            await asyncio.gather(*(task(number) for number in range(tasks)))
        finally:
            if not shared:
                await store.close()

    def run(thread: int) -> None:
        try:
            asyncio.run(writer(thread))
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            barrier.abort()

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []

    async def check(store: AsyncStore) -> None:
        texts = await _chain(store, "chat")
        callers = {
            f"{t}.{n}": [f"{t}.{n}.{a}" for a in range(adds)]
            for t in range(threads)
            for n in range(tasks)
        }
        _check_callers_order(texts, callers)

    if shared:
        asyncio.run(check(shared[0]))
        asyncio.run(shared[0].close())
    else:
        _on_store(url, check)


@pytest.fixture(params=["sqlite", "postgres"])
def file_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that several stores can open (not a memory store)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agents.db'}"
    schema: str = request.getfixturevalue("_pg_schema")
    pgserver.truncate(schema)
    return pgserver.with_search_path(pgserver.server_dsn(), schema)


def test_an_add_after_another_store_wrote_continues_from_its_leaf(file_url: str) -> None:
    url = file_url

    async def body(store: AsyncStore) -> None:
        mine = EventlogSession("chat", store)
        async with await EventlogSession.from_url("chat", url) as theirs:
            await mine.add_items([_user("a")])
            await theirs.add_items([_user("b")])
            await mine.add_items([_user("c")])
            # The session deleted and written again up to the same version as before.
            await theirs.store.delete("chat")
            await theirs.add_items([_user("x")])
            await theirs.add_items([_user("y")])
            await theirs.add_items([_user("z")])
            await mine.add_items([_user("after")])
        assert await _chain(store, "chat") == ["x", "y", "z", "after"]

    _on_store(url, body)


def test_concurrent_pops_each_take_a_different_item(url: str) -> None:
    async def body(store: AsyncStore) -> None:
        session = EventlogSession("chat", store)
        await session.add_items([_user(str(n)) for n in range(12)])
        popped = await asyncio.gather(*(session.pop_item() for _ in range(14)))
        texts = [item["content"] for item in popped if item is not None]  # type: ignore[typeddict-item]
        # Each item popped once; which caller got which is the order they were served in.
        assert sorted(texts, key=int) == [str(n) for n in range(12)]
        assert popped.count(None) == 2
        assert await session.get_items() == []

    _on_store(url, body)


def test_concurrent_adds_and_pops_lose_nothing(url: str) -> None:
    async def body(store: AsyncStore) -> None:
        session = EventlogSession("chat", store)
        await session.add_items([_user("first")])
        calls: list[Awaitable[Any]] = []
        for n in range(60):
            calls.append(session.add_items([_user(str(n))]))
            if n % 4 == 3:
                calls.append(session.pop_item())
        results = await asyncio.gather(*calls)
        popped = [item["content"] for item in results if item is not None]  # type: ignore[index]
        texts = await _chain(store, "chat")
        assert len(popped) == 15 and not set(popped) & set(texts)
        assert sorted([*popped, *texts]) == sorted(["first", *[str(n) for n in range(60)]])

    _on_store(url, body)


def test_cancelled_adds_land_whole_or_not_at_all_and_the_rest_land(url: str) -> None:
    async def body(store: AsyncStore) -> None:
        session = EventlogSession("chat", store)
        calls = [
            asyncio.ensure_future(session.add_items([_user(f"{n}-a"), _user(f"{n}-b")]))
            for n in range(60)
        ]
        await asyncio.sleep(0)
        for call in calls[::3]:
            call.cancel()
        results = await asyncio.gather(*calls, return_exceptions=True)
        texts = await _chain(store, "chat")
        for n, result in enumerate(results):
            if isinstance(result, asyncio.CancelledError):
                assert (f"{n}-a" in texts) == (f"{n}-b" in texts)
            else:
                assert result is None
                assert texts.index(f"{n}-b") == texts.index(f"{n}-a") + 1
        assert len(texts) == len(set(texts))
        # The session still takes writes afterwards.
        await session.add_items([_user("last")])
        assert (await _chain(store, "chat"))[-1] == "last"

    _on_store(url, body)


def test_a_refused_call_among_concurrent_ones_fails_alone(url: str) -> None:
    async def body(store: AsyncStore) -> None:
        session = EventlogSession("chat", store)
        bad = {"role": "user", "content": float("nan")}
        calls = [
            session.add_items([_user(f"{n}-a"), bad if n == 7 else _user(f"{n}-b")])  # type: ignore[list-item]
            for n in range(20)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        refused = results[7]
        assert isinstance(refused, eventlog.InvalidPayloadError)
        assert "items[1].payload" in str(refused)
        assert refused.where == "items[1].payload"  # its own position, not the merged one
        assert [result for n, result in enumerate(results) if n != 7] == [None] * 19
        texts = await _chain(store, "chat")
        _check_callers_order(texts, {str(n): [f"{n}-a", f"{n}-b"] for n in range(20) if n != 7})

    _on_store(url, body)


def test_one_session_object_keeps_working_across_event_loops() -> None:
    # `Runner.run_sync` runs each call on a fresh event loop.
    store = asyncio.run(eventlog.connect_async("memory://"))
    session = EventlogSession("chat", store)
    for n in range(5):
        asyncio.run(session.add_items([_user(str(n))]))
    assert [item["content"] for item in asyncio.run(session.get_items())] == [  # type: ignore[typeddict-item]
        str(n) for n in range(5)
    ]
    assert asyncio.run(session.pop_item()) == _user("4")
    asyncio.run(store.close())


class _CountingStore:
    """Delegates to a real store and records which of its methods were called."""

    def __init__(self, inner: AsyncStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return method(*args, **kwargs)

        return call


@pytest.mark.parametrize("session_id", ["chat", "chat_%\\é"])
def test_add_items_appends_without_loading_the_session(url: str, session_id: str) -> None:
    async def body(store: AsyncStore) -> None:
        # Sessions whose ids share a prefix with this one, or match it as a LIKE pattern.
        for other in ("cha", session_id[:-1], f"{session_id}-2", f"{session_id}\x01", "chatX%é"):
            await EventlogSession(other, store).add_items([_user(other)])
        counting = _CountingStore(store)
        session = EventlogSession(session_id, counting)  # type: ignore[arg-type]
        await session.add_items([_user("first")])
        for n in range(5):
            await session.add_items([_user(f"turn {n}")])
        assert counting.calls.count("save_delta") == 6
        assert counting.calls.count("load") <= 1  # at most the first, to learn the leaf
        assert await _chain(store, session_id) == ["first", *[f"turn {n}" for n in range(5)]]

    _on_store(url, body)


@pytest.mark.parametrize(
    "items",
    [None, "abc", b"ab", 42, {"role": "user", "content": "a dict, not a list"}, [None], [1]],
    ids=["None", "str", "bytes", "int", "dict", "list-of-None", "list-of-int"],
)
def test_add_items_refuses_what_is_not_a_list_of_dicts(url: str, items: Any) -> None:
    async def body(store: AsyncStore) -> None:
        session = EventlogSession("chat", store)
        await session.add_items([_user("kept")])
        before = await store.load("chat")
        with pytest.raises(eventlog.InvalidInputError) as raised:
            await session.add_items(items)
        assert "a dict, not a list" not in str(raised.value)
        assert await store.load("chat") == before

    _on_store(url, body)


@pytest.mark.parametrize("session_id", ["", "nul\x00id", "x" * 256], ids=["empty", "nul", "long"])
def test_a_bad_session_id_gives_a_typed_error_and_writes_nothing(url: str, session_id: str) -> None:
    async def body(store: AsyncStore) -> None:
        session = EventlogSession(session_id, store)
        for call in (
            lambda: session.add_items([_user("a")]),
            lambda: asyncio.gather(*(session.add_items([_user(str(n))]) for n in range(3))),
            session.get_items,
            session.pop_item,
            session.clear_session,
        ):
            with pytest.raises(eventlog.InvalidIdError):
                await call()
        assert (await store.list_sessions()).items == []

    _on_store(url, body)
