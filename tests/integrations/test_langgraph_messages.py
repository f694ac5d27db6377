"""The message reconcile behind the LangGraph saver: each message stored once, lists as segments.

A version of a message list is planned against the versions before it; its
segments, read back with `Store.path`, must give exactly the list, and the
entries written must be only what changed.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("langchain_core")

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.integrations._langgraph_messages import (
    ChainMemory,
    is_message_list,
    plan_chain,
)


def _encode(message: Any) -> dict[str, str]:
    return {"t": "pickle", "b": base64.b64encode(pickle.dumps(message)).decode()}


def _decode(entry: Entry) -> Any:
    assert isinstance(entry.payload, dict)
    return pickle.loads(base64.b64decode(entry.payload["b"]))


def _msg(i: int, text: str | None = None) -> BaseMessage:
    cls = HumanMessage if i % 2 == 0 else AIMessage
    return cls(content=text or f"message {i}", id=f"m{i}")


class Thread:
    """One session in a real memory store plus the memory the saver would keep."""

    def __init__(self) -> None:
        self.store = eventlog.connect("memory://")
        self.known: list[ChainMemory] = []
        self.written = 0

    def put(self, messages: list[BaseMessage]) -> list[tuple[str, int]]:
        plan = plan_chain(messages, self.known, _encode)
        assert plan is not None
        self.store.save_delta("s", SessionDelta(new_entries=plan.new_entries))
        self.written += len(plan.new_entries)
        self.known = [plan.memory]
        return plan.segments

    def read(self, segments: list[tuple[str, int]]) -> list[Any]:
        out: list[Any] = []
        for tail, count in segments:
            part = self.store.path("s", leaf_id=tail)[-count:]
            assert len(part) == count
            out.extend(_decode(e) for e in part)
        return out


def test_an_append_writes_only_the_new_messages_and_keeps_one_segment() -> None:
    thread = Thread()
    messages = [_msg(i) for i in range(10)]
    thread.put(messages)
    assert thread.written == 10
    longer = [*messages, _msg(10), _msg(11)]
    segments = thread.put(longer)
    assert thread.written == 12
    assert len(segments) == 1 and segments[0][1] == 12
    assert thread.read(segments) == longer


def test_removing_messages_writes_nothing_and_reads_back_the_rest() -> None:
    thread = Thread()
    messages = [_msg(i) for i in range(8)]
    thread.put(messages)
    trimmed = messages[3:]  # trimming the oldest, as summarizing graphs do
    segments = thread.put(trimmed)
    assert thread.written == 8 and segments == [(segments[0][0], 5)]
    assert thread.read(segments) == trimmed
    middle = [*trimmed[:2], *trimmed[3:]]  # a RemoveMessage in the middle
    segments = thread.put(middle)
    assert thread.written == 8 and len(segments) == 2
    assert thread.read(segments) == middle


def test_a_replaced_message_is_a_new_entry_and_the_old_version_still_reads() -> None:
    thread = Thread()
    messages = [_msg(i) for i in range(6)]
    before = thread.put(messages)
    edited = [*messages[:2], _msg(2, "edited"), *messages[3:]]
    after = thread.put(edited)
    assert thread.written == 7 and len(after) == 2  # [m0 m1 edited] then [m3 m4 m5]
    assert thread.read(after) == edited
    assert thread.read(before) == messages


def test_without_memory_the_plan_gives_the_same_ids_so_the_store_skips_them() -> None:
    thread = Thread()
    messages = [_msg(i) for i in range(5)]
    first = thread.put(messages)
    fresh = plan_chain([m.model_copy() for m in messages], [], _encode)
    assert fresh is not None
    assert fresh.segments == first
    result = thread.store.save_delta("s", SessionDelta(new_entries=fresh.new_entries))
    assert result.appended == () and len(result.skipped) == 5


def test_only_lists_of_messages_with_ids_are_reconciled() -> None:
    assert is_message_list([_msg(1)])
    assert not is_message_list([])
    assert not is_message_list([HumanMessage(content="no id")])
    assert not is_message_list([_msg(1), "text"])
    assert not is_message_list((_msg(1),))
    assert plan_chain([_msg(1), "text"], [], _encode) is None
    assert plan_chain([], [], _encode) is None


_OPS = st.lists(
    st.tuples(st.sampled_from(["append", "remove", "replace", "trim"]), st.integers(0, 50)),
    max_size=25,
)


@settings(deadline=None, max_examples=60)
@given(_OPS)
def test_every_version_reads_back_exactly(ops: list[tuple[str, int]]) -> None:
    """Random edits: each version's segments give the list; old versions stay readable."""
    thread = Thread()
    current = [_msg(0)]
    versions = [(list(current), thread.put(current))]
    counter = 1
    for op, n in ops:
        nxt = list(current)
        if op == "append" or not nxt:
            nxt += [_msg(counter + k) for k in range(1 + n % 3)]
            counter += 3
        elif op == "remove":
            del nxt[n % len(nxt)]
        elif op == "replace":
            i = n % len(nxt)
            nxt[i] = type(nxt[i])(content=f"edit {counter}", id=nxt[i].id)
            counter += 1
        else:
            nxt = nxt[n % len(nxt) :]
        if not nxt:
            continue
        current = nxt
        versions.append((list(current), thread.put(current)))
    for messages, segments in versions:
        assert thread.read(segments) == messages
