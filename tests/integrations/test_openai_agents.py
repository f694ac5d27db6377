"""The OpenAI Agents SDK adapter, with the real `openai-agents` package and a fake model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

agents = pytest.importorskip("agents")

from agents import Agent, Model, ModelResponse, ModelSettings, RunConfig, Runner, Usage  # noqa: E402
from agents.items import TResponseInputItem, TResponseStreamEvent  # noqa: E402
from agents.memory import Session, SessionSettings  # noqa: E402
from openai.types.responses import ResponseOutputMessage, ResponseOutputText  # noqa: E402

import eventlog  # noqa: E402
from eventlog import AsyncStore  # noqa: E402
from eventlog.integrations.openai_agents import EventlogSession  # noqa: E402

T = TypeVar("T")


@pytest.fixture(autouse=True)
def _no_tracing() -> Iterator[None]:
    """Nothing may try to reach the network: the SDK's trace exporter stays off."""
    agents.set_tracing_disabled(True)
    yield


def _run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'agents.db'}"


def _with_session(
    url: str, body: Callable[[EventlogSession, AsyncStore], Awaitable[T]], session_id: str = "chat"
) -> T:
    async def main() -> T:
        store = await eventlog.connect_async(url)
        try:
            return await body(EventlogSession(session_id, store), store)
        finally:
            await store.close()

    return asyncio.run(main())


def _user(text: str) -> TResponseInputItem:
    return {"role": "user", "content": text}


def _texts(items: list[TResponseInputItem]) -> list[Any]:
    return [item.get("content") for item in items]


# --- the fake model ---------------------------------------------------------------------------


class EchoModel(Model):
    """Answers with the user messages it was sent, and records every input."""

    def __init__(self) -> None:
        self.inputs: list[list[TResponseInputItem]] = []

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
        items: list[TResponseInputItem] = [_user(input)] if isinstance(input, str) else input
        self.inputs.append(list(items))
        said = [str(item.get("content")) for item in items if item.get("role") == "user"]
        text = "heard: " + " | ".join(said)
        message = ResponseOutputMessage(
            id=f"msg_{len(self.inputs)}",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(
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
    ) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the tests run the agent without streaming")


def test_runner_run_sees_the_previous_runs_history(url: str) -> None:
    model = EchoModel()
    agent = Agent(name="echo", instructions="Repeat what you heard.", model=model)
    config = RunConfig(tracing_disabled=True)

    async def body(session: EventlogSession, store: AsyncStore) -> None:
        first = await Runner.run(agent, "hello", session=session, run_config=config)
        assert first.final_output == "heard: hello"
        second = await Runner.run(agent, "again", session=session, run_config=config)
        assert second.final_output == "heard: hello | again"
        # The model got the first run's question and answer before the new question.
        sent = model.inputs[1]
        assert [item.get("role") for item in sent] == ["user", "assistant", "user"]
        assert sent[0].get("content") == "hello" and sent[2].get("content") == "again"
        # ... and the store holds the conversation as a chain of entries, leaf last.
        data = await store.load("chat")
        assert data is not None
        assert [entry.kind for entry in data.entries] == ["item", "message", "item", "message"]
        parents = [entry.parent_id for entry in data.entries]
        assert parents == [None, *[entry.id for entry in data.entries[:-1]]]
        assert data.leaf_id == data.entries[-1].id
        assert data.entries[1].payload["content"][0]["text"] == "heard: hello"

    _with_session(url, body)


def test_a_new_session_object_on_the_same_file_continues_the_conversation(tmp_path: Path) -> None:
    model = EchoModel()
    agent = Agent(name="echo", model=model)
    config = RunConfig(tracing_disabled=True)
    url = f"sqlite:///{tmp_path / 'agents.db'}"

    async def run(text: str) -> Any:
        async with await EventlogSession.from_url("chat", url) as session:
            result = await Runner.run(agent, text, session=session, run_config=config)
        assert isinstance(session.store, AsyncStore)
        return result.final_output

    assert _run(run("one")) == "heard: one"
    assert _run(run("two")) == "heard: one | two"


# --- the Session protocol, directly -----------------------------------------------------------


def test_is_an_sdk_session(url: str) -> None:
    async def body(session: EventlogSession, store: AsyncStore) -> None:
        assert isinstance(session, Session)
        # As the SDK's own sessions: default settings, not None.
        assert session.session_id == "chat" and session.session_settings == SessionSettings()

    _with_session(url, body)


def test_get_items_with_limit_returns_the_newest_in_order(url: str) -> None:
    async def body(session: EventlogSession, store: AsyncStore) -> None:
        assert await session.get_items() == []
        await session.add_items([_user("a"), _user("b")])
        await session.add_items([_user("c")])
        await session.add_items([])
        assert _texts(await session.get_items()) == ["a", "b", "c"]
        assert _texts(await session.get_items(limit=2)) == ["b", "c"]
        assert _texts(await session.get_items(limit=10)) == ["a", "b", "c"]
        assert await session.get_items(limit=0) == []
        session.session_settings = SessionSettings(limit=1)
        assert _texts(await session.get_items()) == ["c"]
        assert _texts(await session.get_items(limit=2)) == ["b", "c"]

    _with_session(url, body)


def test_items_round_trip_and_kind_is_the_item_type(url: str) -> None:
    call: TResponseInputItem = {
        "type": "function_call",
        "call_id": "call_1",
        "name": "lookup",
        "arguments": '{"q": "caf\\u00e9 \\u0000"}',
    }
    output: TResponseInputItem = {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": "nul \x00 and é",
    }

    async def body(session: EventlogSession, store: AsyncStore) -> None:
        await session.add_items([_user("look it up"), call, output])
        assert await session.get_items() == [_user("look it up"), call, output]
        data = await store.load("chat")
        assert data is not None
        assert [entry.kind for entry in data.entries] == [
            "item",
            "function_call",
            "function_call_output",
        ]

    _with_session(url, body)


def test_pop_item_tombstones_the_newest_and_returns_it(url: str) -> None:
    async def body(session: EventlogSession, store: AsyncStore) -> None:
        assert await session.pop_item() is None
        await session.add_items([_user("a"), _user("b")])
        before = await store.load("chat")
        assert before is not None
        assert await session.pop_item() == _user("b")
        assert _texts(await session.get_items()) == ["a"]
        after = await store.load("chat")
        assert after is not None and after.leaf_id == before.entries[0].id
        info = (await store.list_sessions()).items[0]
        assert info.removed_count == 1  # tombstoned, not erased
        assert await store.load("chat", at_version=before.version) == before
        # The next item continues from the new leaf.
        await session.add_items([_user("c")])
        assert _texts(await session.get_items()) == ["a", "c"]
        assert await session.pop_item() == _user("c")
        assert await session.pop_item() == _user("a")
        assert await session.pop_item() is None
        assert await session.get_items() == []

    _with_session(url, body)


def test_clear_session_tombstones_everything(url: str) -> None:
    async def body(session: EventlogSession, store: AsyncStore) -> None:
        await session.clear_session()  # nothing to clear: nothing written
        assert await store.load("chat") is None
        await session.add_items([_user("a"), _user("b"), _user("c")])
        full = await store.load("chat")
        assert full is not None
        await session.clear_session()
        assert await session.get_items() == []
        cleared = await store.load("chat")
        assert cleared is not None and cleared.entries == [] and cleared.leaf_id is None
        assert (await store.list_sessions()).items[0].removed_count == 3
        assert await store.load("chat", at_version=full.version) == full
        await session.clear_session()  # already empty: no new version
        again = await store.load("chat")
        assert again is not None and again.version == cleared.version
        await session.add_items([_user("fresh")])
        assert _texts(await session.get_items()) == ["fresh"]

    _with_session(url, body)


def test_sessions_are_separate(url: str) -> None:
    async def body(session: EventlogSession, store: AsyncStore) -> None:
        other = EventlogSession("other", store)
        await session.add_items([_user("mine")])
        await other.add_items([_user("theirs")])
        await other.clear_session()
        assert _texts(await session.get_items()) == ["mine"]

    _with_session(url, body)


def test_concurrent_additions_all_land_in_one_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agents.db'}"

    async def body(session: EventlogSession, store: AsyncStore) -> None:
        writers = [EventlogSession("chat", store) for _ in range(8)]
        await asyncio.gather(
            *(writer.add_items([_user(f"w{n}")]) for n, writer in enumerate(writers))
        )
        items = await session.get_items()
        assert sorted(_texts(items)) == [f"w{n}" for n in range(8)]
        data = await store.load("chat")
        assert data is not None and len(data.entries) == 8

    _with_session(url, body)


def test_a_non_dict_item_is_refused_and_nothing_is_written(url: str) -> None:
    async def body(session: EventlogSession, store: AsyncStore) -> None:
        with pytest.raises(eventlog.InvalidInputError, match=r"items\[1\]"):
            await session.add_items([_user("ok"), "not a dict"])  # type: ignore[list-item]
        with pytest.raises(eventlog.InvalidPayloadError, match=r"items\[1\]\.payload"):
            await session.add_items([_user("ok"), {"role": "user", "content": float("nan")}])  # type: ignore[list-item]
        assert await store.load("chat") is None

    _with_session(url, body)
