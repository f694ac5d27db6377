"""EventlogSaver beyond the conformance suite: bad input as LangGraph's savers answer it,
exact serde round trips, storage per step that stays flat, prune on a real thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph")

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

import eventlog
from eventlog import Keyring
from eventlog.integrations.langgraph import EventlogSaver

from .langgraph_graph import build, user


@pytest.fixture(params=["memory", "sqlite", "sqlite-sealed"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[eventlog.Store]:
    """A store of each kind; sealed: payloads encrypted at rest (reads open them)."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 's.db'}"
    keyring = Keyring({"k1": os.urandom(32)}, active="k1") if "sealed" in request.param else None
    with eventlog.connect(url, keyring=keyring) as opened:
        yield opened


def _checkpoint(values: dict[str, Any]) -> Any:
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = values
    checkpoint["channel_versions"] = {k: f"{1:032}.0" for k in values}
    return checkpoint


def _put(
    saver: BaseCheckpointSaver[Any], thread: str, values: dict[str, Any], parent: Any = None
) -> Any:
    config: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    if parent is not None:
        config["configurable"]["checkpoint_id"] = parent["configurable"]["checkpoint_id"]
    checkpoint = _checkpoint(values)
    return saver.put(
        config, checkpoint, {"source": "loop", "step": 0}, checkpoint["channel_versions"]
    )


def _outcome(call: Any) -> Any:
    try:
        return ("returned", call())
    except Exception as exc:  # the type is what is compared
        return ("raised", type(exc))


BAD_CONFIGS: list[Any] = [{"configurable": {}}, {"configurable": {"checkpoint_ns": ""}}]


@pytest.mark.parametrize("config", BAD_CONFIGS)
def test_a_config_without_thread_id_raises_what_in_memory_saver_raises(
    store: eventlog.Store, config: Any
) -> None:
    ours, theirs = EventlogSaver(store), InMemorySaver()
    for saver in (ours, theirs):
        checkpoint = _checkpoint({"x": 1})
        outcomes = [
            _outcome(lambda s=saver: s.get_tuple(config)),
            _outcome(lambda s=saver, c=checkpoint: s.put(config, c, {}, {"x": 1})),
            _outcome(lambda s=saver: s.put_writes(config, [("x", 1)], "task")),
        ]
        assert outcomes == [("raised", KeyError)] * 3, (type(saver).__name__, outcomes)
    assert store.list_sessions().items == []


def test_unknown_ids_and_writes_for_a_missing_checkpoint_match_in_memory_saver(
    store: eventlog.Store,
) -> None:
    ours, theirs = EventlogSaver(store), InMemorySaver()
    results = []
    for saver in (ours, theirs):
        stored = _put(saver, "t", {"x": 1})
        missing: Any = {
            "configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": "nope"}
        }
        results.append(
            [
                saver.get_tuple(missing),
                saver.get_tuple({"configurable": {"thread_id": "absent", "checkpoint_ns": ""}}),
                _outcome(lambda s=saver, m=missing: s.put_writes(m, [("x", 2)], "task")),
                saver.get_tuple(missing),
                list(saver.list({"configurable": {"thread_id": "absent"}})),
                saver.get_tuple(stored).checkpoint["channel_values"],  # type: ignore[union-attr]
            ]
        )
    assert results[0] == results[1] == [None, None, ("returned", None), None, [], {"x": 1}]


def test_the_latest_checkpoint_survives_writes_for_checkpoints_before_after_and_absent(
    store: eventlog.Store,
) -> None:
    """Writes move the session's leaf; the latest checkpoint is still the greatest id."""
    ours, theirs = EventlogSaver(store), InMemorySaver()
    seen = []
    for saver in (ours, theirs):
        first = _put(saver, "w", {"x": 1})
        second = _put(saver, "w", {"x": 2}, first)
        saver.put_writes(second, [("x", 3)], "task-2")
        saver.put_writes(first, [("x", 4)], "task-1")  # an older checkpoint's writes last
        latest: Any = {"configurable": {"thread_id": "w", "checkpoint_ns": ""}}
        found = [saver.get_tuple(latest)]
        for absent in ("~after-every-id", "0-before-every-id"):
            config: Any = {"configurable": {**latest["configurable"], "checkpoint_id": absent}}
            saver.put_writes(config, [("x", 5)], "task-absent")
            found.append(saver.get_tuple(latest))
        seen.append(
            [
                (t.checkpoint["id"] == second["configurable"]["checkpoint_id"], t.pending_writes)
                if t is not None
                else None
                for t in found
            ]
        )
    assert seen[0] == seen[1] == [(True, [("task-2", "x", 3)])] * 3


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(lambda m: m, id="whole-list"),
        pytest.param(lambda m: [*m[:20], *m[21:]], id="one-removed-in-the-middle"),
        pytest.param(lambda m: m[-3:], id="trimmed-to-a-few"),
    ],
)
def test_a_fresh_saver_reads_the_latest_list_as_in_memory_saver_does(
    store: eventlog.Store, keep: Any
) -> None:
    """Most of the thread (read in one scan) or a few of its messages (read by path)."""
    messages: list[Any] = [
        (HumanMessage if i % 2 == 0 else AIMessage)(content=f"m{i} " * 5, id=f"id-{i}")
        for i in range(60)
    ]
    theirs = InMemorySaver()
    for saver in (EventlogSaver(store), theirs):
        first = _put(saver, "read", {"messages": messages})
        _put(saver, "read", {"messages": keep(messages)}, first)
    latest: Any = {"configurable": {"thread_id": "read", "checkpoint_ns": ""}}
    ours, expected = EventlogSaver(store).get_tuple(latest), theirs.get_tuple(latest)
    assert ours is not None and expected is not None
    got = ours.checkpoint["channel_values"]["messages"]
    assert got == expected.checkpoint["channel_values"]["messages"] == keep(messages)
    assert [type(m) for m in got] == [type(m) for m in keep(messages)]


class _TaggedSerde:
    """A serde whose types are its own (as LangGraph's EncryptedSerializer's are)."""

    def __init__(self) -> None:
        self.inner = InMemorySaver().serde

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        type_, data = self.inner.dumps_typed(obj)
        return f"tagged+{type_}", data[::-1]

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, body = data
        assert type_.startswith("tagged+"), type_
        return self.inner.loads_typed((type_.removeprefix("tagged+"), body[::-1]))


def test_a_fresh_saver_with_its_own_serde_reads_the_latest_list(store: eventlog.Store) -> None:
    """Values of a type other than msgpack are read one by one, by the saver's serde."""
    messages: list[Any] = [
        (HumanMessage if i % 2 == 0 else AIMessage)(content=f"m{i}", id=f"id-{i}")
        for i in range(30)
    ]
    stored = _put(EventlogSaver(store, serde=_TaggedSerde()), "own", {"messages": messages})
    found = EventlogSaver(store, serde=_TaggedSerde()).get_tuple(
        {"configurable": {"thread_id": "own", "checkpoint_ns": ""}}
    )
    assert found is not None and found.config == stored
    assert found.checkpoint["channel_values"]["messages"] == messages


def test_a_saver_reads_what_another_saver_put_since_not_the_list_it_remembers(
    store: eventlog.Store,
) -> None:
    messages: list[Any] = [HumanMessage(content=f"q{i}", id=f"q{i}") for i in range(10)]
    ours, other = EventlogSaver(store), EventlogSaver(store)
    latest: Any = {"configurable": {"thread_id": "two", "checkpoint_ns": ""}}
    first = _put(ours, "two", {"messages": messages})
    read = ours.get_tuple(latest)
    assert read is not None and read.checkpoint["channel_values"]["messages"] == messages
    changed = [*messages[:5], AIMessage(content="other", id="o")]
    _put(other, "two", {"messages": changed}, first)
    after = ours.get_tuple(latest)
    assert after is not None and after.checkpoint["channel_values"]["messages"] == changed
    older = ours.get_tuple(first)
    assert older is not None and older.checkpoint["channel_values"]["messages"] == messages


def test_a_list_extended_in_place_after_its_put_reads_as_it_was_put(
    store: eventlog.Store,
) -> None:
    """As InMemorySaver, which serialized it: a reducer may extend the list it was given."""
    got = []
    for saver in (EventlogSaver(store), InMemorySaver()):
        messages: list[Any] = [HumanMessage(content=f"q{i}", id=f"q{i}") for i in range(4)]
        stored = _put(saver, "in-place", {"messages": messages})
        messages.append(AIMessage(content="later", id="later"))
        found = saver.get_tuple(stored)
        assert found is not None
        got.append(found.checkpoint["channel_values"]["messages"])
    assert got[0] == got[1] and len(got[0]) == 4


def test_a_thread_id_too_long_for_a_session_id_is_a_value_error_and_stores_nothing(
    store: eventlog.Store,
) -> None:
    with pytest.raises(ValueError, match="too long"):
        _put(EventlogSaver(store), "t" * 300, {"x": 1})
    assert store.list_sessions().items == []


def test_serde_round_trips_exactly_like_in_memory_saver(store: eventlog.Store) -> None:
    values: dict[str, Any] = {
        "bytes": b"\x00\xffraw",
        "set": {1, 2},
        "when": dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC),
        "nested": {"list": [None, True, -0.0], "text": "\u0000 nul"},
        "messages": [
            HumanMessage(content="hi", id="1"),
            AIMessage(content=[{"type": "text", "text": "yo"}], id="2"),
        ],
        "big": "x" * 5000,
    }
    ours, theirs = EventlogSaver(store), InMemorySaver()
    a, b = ours.get_tuple(_put(ours, "t", values)), theirs.get_tuple(_put(theirs, "t", values))
    assert a is not None and b is not None
    assert a.checkpoint["channel_values"] == b.checkpoint["channel_values"] == values
    for key, value in values.items():
        assert type(a.checkpoint["channel_values"][key]) is type(value), key
    assert list(a.checkpoint["channel_values"]) == list(values)
    assert a.metadata == b.metadata


def _stored_bytes(store: eventlog.Store) -> int:
    return sum(info.bytes for info in store.list_sessions(limit=1000).items)


def test_bytes_stored_per_step_stay_flat_as_the_thread_grows(store: eventlog.Store) -> None:
    """A step that adds two messages costs as much at 1,000 messages as at 10."""
    saver = EventlogSaver(store)
    messages: list[Any] = []
    parent = None
    per_step: dict[int, int] = {}
    for step in range(500):
        messages = [
            *messages,
            HumanMessage(content=f"question {step} " * 8, id=f"h{step}"),
            AIMessage(content=f"answer {step} " * 20, id=f"a{step}"),
        ]
        before = _stored_bytes(store)
        parent = _put(saver, "flat", {"messages": messages, "count": step}, parent)
        per_step[len(messages)] = _stored_bytes(store) - before
    small, large = per_step[10], per_step[1000]
    assert large <= 1.5 * small, (small, large)
    latest = saver.get_tuple({"configurable": {"thread_id": "flat", "checkpoint_ns": ""}})
    assert latest is not None and latest.checkpoint["channel_values"]["messages"] == messages


def test_prune_keep_latest_keeps_the_thread_readable_and_running(store: eventlog.Store) -> None:
    saver = EventlogSaver(store)
    ours, theirs = build(saver), build(InMemorySaver())
    config: Any = {"configurable": {"thread_id": "prune"}}
    for turn in range(6):
        ours.invoke(user(turn), config)
        theirs.invoke(user(turn), config)
    before = ours.get_state(config).values
    saver.prune(["prune"])
    assert len(list(saver.list(config))) == 1
    assert ours.get_state(config).values == before
    assert ours.invoke(user(6), config) == theirs.invoke(user(6), config)


def test_a_checkpoint_put_again_with_other_content_is_overwritten_like_in_memory_saver(
    store: eventlog.Store,
) -> None:
    ours, theirs = EventlogSaver(store), InMemorySaver()
    got = []
    for saver in (ours, theirs):
        first = _put(saver, "again", {"x": 1})
        config: Any = {"configurable": {"thread_id": "again", "checkpoint_ns": ""}}
        checkpoint = _checkpoint({"x": 2, "messages": [HumanMessage(content="new", id="n")]})
        checkpoint["id"] = first["configurable"]["checkpoint_id"]
        checkpoint["channel_versions"] = {"x": "2", "messages": "1"}
        saver.put(config, checkpoint, {"source": "update", "step": 1}, {"x": "2", "messages": "1"})
        latest = saver.get_tuple(config)
        assert latest is not None
        got.append((latest.checkpoint["channel_values"], latest.metadata["source"]))
        assert len(list(saver.list(config))) == 1
    assert got[0] == got[1]


def test_the_async_saver_serves_a_sync_graph_but_not_from_a_running_loop(tmp_path: Path) -> None:
    from eventlog.integrations.langgraph import AsyncEventlogSaver

    async def opened() -> eventlog.AsyncStore:
        return await eventlog.connect_async(f"sqlite:///{tmp_path / 'async.db'}")

    store = asyncio.run(opened())
    try:
        saver = AsyncEventlogSaver(store)
        ours, theirs = build(saver), build(InMemorySaver())
        config: Any = {"configurable": {"thread_id": "sync-on-async"}}
        for turn in range(3):
            assert ours.invoke(user(turn), config) == theirs.invoke(user(turn), config)

        async def inside_a_loop() -> None:
            with pytest.raises(asyncio.InvalidStateError):
                saver.get_tuple(config)

        asyncio.run(inside_a_loop())
    finally:
        asyncio.run(store.close())
