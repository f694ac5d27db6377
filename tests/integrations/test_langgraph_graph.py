"""A real LangGraph graph on the eventlog savers behaves as on LangGraph's InMemorySaver.

100 turns of a MessagesState graph run on both savers side by side; after every
turn the states must be equal. Then history, time travel (invoking from an old
checkpoint), forking with `update_state` on a past config (a replaced and a
removed message), a resume in a fresh process, and two graphs racing on one
thread.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

pytest.importorskip("langgraph")

from langchain_core.messages import AIMessage, RemoveMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.types import Command, StateSnapshot, interrupt

import eventlog
from eventlog.integrations.langgraph import AsyncEventlogSaver, EventlogSaver

from .langgraph_graph import as_json, build, user

TURNS = 100
HERE = Path(__file__).parent


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'graph.db'}"
    import pgserver

    pgserver.dsn_or_skip()
    return pgserver.with_search_path(pgserver.server_dsn(), pgserver.make_schema("lg_graph"))


@pytest.fixture
def store(url: str) -> Iterator[eventlog.Store]:
    with eventlog.connect(url) as opened:
        yield opened


def _same(ours: StateSnapshot, theirs: StateSnapshot) -> None:
    assert ours.values == theirs.values
    assert ours.next == theirs.next
    assert ours.metadata is not None and theirs.metadata is not None
    for key in ("source", "step"):
        assert ours.metadata.get(key) == theirs.metadata.get(key), key
    assert (ours.parent_config is None) == (theirs.parent_config is None)
    assert [t.name for t in ours.tasks] == [t.name for t in theirs.tasks]


@pytest.mark.parametrize("url", ["sqlite", "postgres"], indirect=True)
def test_100_turns_history_time_travel_and_fork_match_in_memory_saver(
    store: eventlog.Store,
) -> None:
    ours, theirs = build(EventlogSaver(store)), build(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "chat"}}
    for turn in range(TURNS):
        a = ours.invoke(user(turn), config)
        b = theirs.invoke(user(turn), config)
        assert a == b
        _same(ours.get_state(config), theirs.get_state(config))
    assert len(ours.get_state(config).values["messages"]) == 2 * TURNS

    history = list(ours.get_state_history(config))
    reference = list(theirs.get_state_history(config))
    assert len(history) == len(reference) == 3 * TURNS
    for mine, other in zip(history, reference, strict=True):
        _same(mine, other)

    # Time travel: run again from the state after turn 10 (a checkpoint with 22 messages).
    old = next(i for i, s in enumerate(reference) if len(s.values["messages"]) == 22 and not s.next)
    a = ours.invoke(user("travel"), history[old].config)
    b = theirs.invoke(user("travel"), reference[old].config)
    assert a == b and len(a["messages"]) == 24
    # The thread's latest is now the branch that left turn 10.
    _same(ours.get_state(config), theirs.get_state(config))

    # Fork from a past config: replace one message (same id, new text) and remove another.
    edits: list[Any] = [AIMessage(content="edited", id="ai-h-3"), RemoveMessage(id="h-5")]
    forked_ours = ours.update_state(history[old].config, {"messages": edits})
    forked_theirs = theirs.update_state(reference[old].config, {"messages": edits})
    _same(ours.get_state(forked_ours), theirs.get_state(forked_theirs))
    a = ours.invoke(user("after fork"), forked_ours)
    b = theirs.invoke(user("after fork"), forked_theirs)
    assert a == b
    assert [m.id for m in a["messages"]].count("h-5") == 0
    assert "edited" in [m.content for m in a["messages"]]
    # The newest checkpoints, on both branches, read back the same.
    for mine, other in zip(
        list(ours.get_state_history(config, limit=12)),
        list(theirs.get_state_history(config, limit=12)),
        strict=True,
    ):
        _same(mine, other)


def test_async_saver_runs_the_graph_like_in_memory_saver(url: str) -> None:
    async def main() -> None:
        store = await eventlog.connect_async(url)
        try:
            ours, theirs = build(AsyncEventlogSaver(store)), build(InMemorySaver())
            config: Any = {"configurable": {"thread_id": "async-chat"}}
            for turn in range(20):
                assert await ours.ainvoke(user(turn), config) == await theirs.ainvoke(
                    user(turn), config
                )
                _same(await ours.aget_state(config), await theirs.aget_state(config))
            mine = [s async for s in ours.aget_state_history(config)]
            other = [s async for s in theirs.aget_state_history(config)]
            assert len(mine) == len(other) == 60
            for a, b in zip(mine, other, strict=True):
                _same(a, b)
        finally:
            await store.close()

    asyncio.run(main())


def test_a_fresh_process_resumes_the_thread(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    theirs = build(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "resume"}}
    with eventlog.connect(url) as store:
        ours = build(EventlogSaver(store))
        for turn in range(30):
            ours.invoke(user(turn), config)
            theirs.invoke(user(turn), config)
    script = HERE / "langgraph_graph.py"
    done = subprocess.run(
        [sys.executable, str(script), url, "resume", "30"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    expected = theirs.invoke(user(30), config)
    assert json.loads(done.stdout) == as_json(expected["messages"])
    with eventlog.connect(url) as store:
        _same(build(EventlogSaver(store)).get_state(config), theirs.get_state(config))


def test_two_graphs_racing_on_one_thread_lose_nothing(store: eventlog.Store) -> None:
    """Two graphs (own savers, one store) extend sibling branches of one checkpoint at once."""
    base_graph = build(EventlogSaver(store))
    thread: Any = {"configurable": {"thread_id": "race"}}
    base = base_graph.invoke(user("base"), thread)
    base_config = base_graph.get_state(thread).config
    turns = 15
    results: dict[str, list[Any]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def run(name: str) -> None:
        try:
            graph = build(EventlogSaver(store))
            config = base_config
            start.wait()
            for turn in range(turns):
                # Follow this run's own branch: continue from its newest checkpoint.
                events = list(
                    graph.stream(user(f"{name}{turn}"), config, stream_mode="checkpoints")
                )
                config = events[-1]["config"]
            results[name] = [config, graph.get_state(config).values["messages"]]
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(name,)) for name in ("x", "y")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, errors
    for name in ("x", "y"):
        config, messages = results[name]
        expected = [m.id for m in base["messages"]]
        for turn in range(turns):
            expected += [f"h-{name}{turn}", f"ai-h-{name}{turn}"]
        assert [m.id for m in messages] == expected
        # The branch's whole history reads back through its parents.
        reader = build(EventlogSaver(store))
        chain = []
        cursor: Any = config
        while cursor is not None:
            snapshot = reader.get_state(cursor)
            chain.append(snapshot)
            cursor = snapshot.parent_config
        assert len(chain) == 3 + 3 * turns
    listed = list(EventlogSaver(store).list(thread))
    assert len(listed) == 3 + 2 * 3 * turns
    assert len({t.checkpoint["id"] for t in listed}) == len(listed)


def _extend(state: list[int], writes: Sequence[list[int]]) -> list[int]:
    return [*state, *(x for write in writes for x in write)]


class DeltaState(TypedDict):
    items: Annotated[list[int], DeltaChannel(_extend, snapshot_frequency=3)]


def test_a_delta_channel_graph_rebuilds_like_in_memory_saver(store: eventlog.Store) -> None:
    """LangGraph's beta DeltaChannel: values rebuilt from ancestor writes and snapshots."""

    def grow(state: DeltaState) -> dict[str, list[int]]:
        return {"items": [len(state["items"])]}

    def compile_with(saver: Any) -> Any:
        builder = StateGraph(DeltaState)
        builder.add_node("grow", grow)
        builder.add_edge(START, "grow")
        builder.add_edge("grow", END)
        return builder.compile(checkpointer=saver)

    ours, theirs = compile_with(EventlogSaver(store)), compile_with(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "delta"}}
    for turn in range(10):
        assert ours.invoke({"items": [100 + turn]}, config) == theirs.invoke(
            {"items": [100 + turn]}, config
        )
    assert ours.get_state(config).values == theirs.get_state(config).values
    mine = [s.values for s in ours.get_state_history(config)]
    other = [s.values for s in theirs.get_state_history(config)]
    assert mine == other and len(mine) == 30


def test_interrupt_and_resume_match_in_memory_saver(store: eventlog.Store) -> None:
    """Human in the loop: `interrupt` leaves special writes that `Command(resume=)` reads."""

    def ask(state: MessagesState) -> dict[str, list[Any]]:
        answer = interrupt({"question": state["messages"][-1].content})
        return {"messages": [AIMessage(content=f"approved: {answer}", id=f"ai-{answer}")]}

    def compile_with(saver: Any, durability: Any) -> Any:
        builder = StateGraph(MessagesState)
        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        builder.add_edge("ask", END)
        return builder.compile(checkpointer=saver), durability

    for durability in ("async", "exit"):
        config: Any = {"configurable": {"thread_id": f"hitl-{durability}"}}
        runs = [
            compile_with(EventlogSaver(store), durability),
            compile_with(InMemorySaver(), durability),
        ]
        outcomes = []
        for graph, mode in runs:
            first = graph.invoke(user(1), config, durability=mode)
            pending = graph.get_state(config)
            resumed = graph.invoke(Command(resume="yes"), config, durability=mode)
            outcomes.append(
                (
                    [i.value for i in first["__interrupt__"]],
                    pending.next,
                    [i.value for i in pending.interrupts],
                    resumed,
                    graph.get_state(config).values,
                    len(list(graph.get_state_history(config))),
                )
            )
        assert outcomes[0] == outcomes[1], durability
