"""The adapter behaves as the SDK's own sessions do where its session tests look (issue 22).

Settings, closing, unstorable items, and ``Runner.run_sync`` (a fresh event loop per
call, and threads) on a PostgreSQL-backed session, with a fake model: no network.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pgserver
import pytest

agents = pytest.importorskip("agents")

from agents import Agent, Model, ModelResponse, ModelSettings, RunConfig, Runner, Usage  # noqa: E402
from agents.items import TResponseInputItem, TResponseStreamEvent  # noqa: E402
from agents.memory import SessionSettings  # noqa: E402
from openai.types.responses import ResponseOutputMessage, ResponseOutputText  # noqa: E402

import eventlog  # noqa: E402
from eventlog import InvalidPayloadError  # noqa: E402
from eventlog.integrations.openai_agents import EventlogSession, UnstorableItemError  # noqa: E402

T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'agents.db'}"
    return _pg_url()


def _pg_url() -> str:
    pgserver.dsn_or_skip()
    return pgserver.with_search_path(pgserver.server_dsn(), pgserver.make_schema("sdk_parity"))


def _on_a_new_loop(call: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await call()

    return asyncio.run(main())


def _with_session(url: str, body: Callable[[EventlogSession], Awaitable[T]]) -> T:
    async def main() -> T:
        store = await eventlog.connect_async(url)
        try:
            return await body(EventlogSession("chat", store))
        finally:
            await store.close()

    return asyncio.run(main())


# --- settings, closing, unstorable items ---------------------------------------------------


def test_settings_default_to_the_sdks_and_a_dict_is_normalized() -> None:
    store = eventlog.memory.AsyncMemoryStore()
    assert EventlogSession("s", store).session_settings == SessionSettings()
    session = EventlogSession("s", store, session_settings={"limit": 2})
    assert isinstance(session.session_settings, SessionSettings)
    assert session.session_settings.limit == 2

    async def body() -> list[TResponseInputItem]:
        await session.add_items([{"role": "user", "content": str(n)} for n in range(4)])
        return await session.get_items()

    assert [item.get("content") for item in _on_a_new_loop(body)] == ["2", "3"]


def test_an_unknown_settings_key_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="limitt"):
        EventlogSession("s", eventlog.memory.AsyncMemoryStore(), session_settings={"limitt": 1})


def test_every_call_on_a_closed_session_raises_and_writes_nothing(url: str) -> None:
    async def body(session: EventlogSession) -> None:
        await session.add_items([{"role": "user", "content": "kept"}])
        session.close()  # not awaited, as with the SDK's sync SQLiteSession.close()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: session.add_items([]),  # not a silent no-op on a closed session
            lambda: session.add_items([{"role": "user", "content": "lost"}]),
            session.get_items,
            session.pop_item,
            session.clear_session,
        ]
        for call in calls:
            with pytest.raises(RuntimeError, match="EventlogSession is closed"):
                await call()
        await session.close()  # awaiting a second close is harmless
        reopened = EventlogSession("chat", session.store)
        assert [item.get("content") for item in await reopened.get_items()] == ["kept"]

    _with_session(url, body)


def test_closing_a_session_from_url_closes_its_store(tmp_path: Path) -> None:
    async def body() -> None:
        session = await EventlogSession.from_url("s", f"sqlite:///{tmp_path / 'own.db'}")
        await session.add_items([{"role": "user", "content": "a"}])
        await session.close()
        with pytest.raises(eventlog.StoreUnavailableError):
            await session.store.load("s")

    _on_a_new_loop(body)


def test_an_item_that_is_not_json_is_both_type_error_and_invalid_payload(url: str) -> None:
    async def body(session: EventlogSession) -> None:
        await session.add_items([{"role": "user", "content": "kept"}])
        bad: Any = {"role": "user", "content": {1, 2}}
        with pytest.raises(UnstorableItemError) as raised:
            await session.add_items([{"role": "user", "content": "x"}, bad])
        assert isinstance(raised.value, TypeError)
        assert isinstance(raised.value, InvalidPayloadError)
        assert raised.value.session_id == "chat" and raised.value.where is not None
        assert raised.value.where.startswith("items[1]")
        assert "{1, 2}" not in str(raised.value)  # no payload in the message
        assert [item.get("content") for item in await session.get_items()] == ["kept"]

    _with_session(url, body)


# --- Runner.run_sync: a fresh event loop per call, and threads -----------------------------


class CountingModel(Model):
    """Answers "turn N", N the number of user messages it was sent (the history)."""

    def __init__(self) -> None:
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Any],
        output_schema: Any,
        handoffs: list[Any],
        tracing: Any,
        *,
        previous_response_id: str | None,
        conversation_id: str | None,
        prompt: Any,
    ) -> ModelResponse:
        self.loops.append(asyncio.get_running_loop())
        items = [{"role": "user", "content": input}] if isinstance(input, str) else input
        turn = sum(1 for item in items if item.get("role") == "user")
        message = ResponseOutputMessage(
            id=f"msg_{turn}",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=f"turn {turn}", annotations=[])],
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("run without streaming")


def _chat(session: EventlogSession, calls: int) -> list[str]:
    """`calls` turns with ``Runner.run_sync``, each on an event loop of its own.

    This SDK's run_sync reuses the thread's default loop while it is open (older ones
    ran ``asyncio.run`` per call); closing it after each call makes the next call
    create a fresh one, which is the case the store must survive.
    """
    model = CountingModel()
    agent = Agent(name="counter", instructions="Count.", model=model)
    config = RunConfig(tracing_disabled=True)
    answers = []
    for n in range(calls):
        result = Runner.run_sync(agent, f"q{n}", session=session, run_config=config)
        answers.append(str(result.final_output))
        asyncio.get_event_loop_policy().get_event_loop().close()
    assert len(set(map(id, model.loops))) == calls, "two calls shared a loop"
    return answers


def test_run_sync_twenty_times_on_one_postgres_session() -> None:
    agents.set_tracing_disabled(True)
    store = _on_a_new_loop(lambda: eventlog.connect_async(_pg_url()))
    session = EventlogSession("run-sync", store)
    try:
        # Each run_sync call runs on an event loop of its own; each sees the whole history.
        assert _chat(session, 20) == [f"turn {n}" for n in range(1, 21)]
        items = _on_a_new_loop(session.get_items)
        assert len(items) == 40
    finally:
        _on_a_new_loop(session.close)
        _on_a_new_loop(store.close)  # from yet another loop


def test_run_sync_in_eight_threads_on_eight_postgres_sessions() -> None:
    agents.set_tracing_disabled(True)
    store = _on_a_new_loop(lambda: eventlog.connect_async(_pg_url()))
    answers: dict[int, list[str]] = {}

    def worker(index: int) -> None:
        answers[index] = _chat(EventlogSession(f"thread-{index}", store), 20)

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in threads), "a thread hung"
        assert answers == {index: [f"turn {n}" for n in range(1, 21)] for index in range(8)}
    finally:
        _on_a_new_loop(store.close)
