"""`decode_event` gives what `Event.model_validate` gives, on every stored shape we produce.

Each event is dumped as the session service stores it (``model_dump(mode="json",
exclude_none=True)``) and read back both ways; the two must be equal, set the same
fields, dump the same and print the same. Payloads the fast path does not convert
(bytes, unknown keys, wrong JSON types) must still come back as pydantic reads them,
or fail as pydantic fails.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("google.adk")

import pydantic
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.tools.tool_confirmation import ToolConfirmation
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog.integrations._adk_events import decode_event


def _stored(event: Event) -> dict[str, Any]:
    payload: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    return payload


def _same(payload: dict[str, Any]) -> None:
    slow = Event.model_validate(payload)
    fast = decode_event(payload)
    assert type(fast) is Event
    assert fast == slow
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump() == slow.model_dump()
    assert repr(fast) == repr(slow)
    if fast.content is not None and slow.content is not None:
        assert fast.content.model_fields_set == slow.content.model_fields_set
        for a, b in zip(fast.content.parts or [], slow.content.parts or [], strict=True):
            assert type(a) is type(b)
            assert a.model_fields_set == b.model_fields_set


EVENTS = [
    Event(author="user", invocation_id="i"),
    Event(
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="hello")]),
        actions=EventActions(state_delta={"k": [1, {"n": None}], "f": 1.5}),
    ),
    Event(
        author="user",
        content=types.Content(
            role="user", parts=[types.Part.from_bytes(data=b"\x00png", mime_type="image/png")]
        ),
        grounding_metadata=types.GroundingMetadata(
            search_entry_point=types.SearchEntryPoint(sdk_blob=b"blob")
        ),
        long_running_tool_ids={"b", "a"},
    ),
    Event(
        invocation_id="invocation",
        author="user",
        content=types.Content(role="user", parts=[types.Part(text="t")]),
        turn_complete=True,
        partial=False,
        actions=EventActions(
            artifact_delta={"file": 0},
            transfer_to_agent="agent",
            escalate=True,
            requested_tool_confirmations={
                "c": ToolConfirmation(hint="h", confirmed=False, payload={"a": 1})
            },
        ),
        error_code="e",
        error_message="m",
        interrupted=True,
        usage_metadata=types.GenerateContentResponseUsageMetadata(
            prompt_token_count=1, candidates_token_count=1, total_token_count=2
        ),
        citation_metadata=types.CitationMetadata(),
        custom_metadata={"custom_key": "custom_value"},
        timestamp=1700000000,
        input_transcription=types.Transcription(text="in", finished=True),
        finish_reason=types.FinishReason.STOP,
    ),
    Event(
        author="model",
        content=types.Content(
            role="model",
            parts=[
                types.Part.from_function_call(name="f", args={"x": [1, {"y": 2}]}),
                types.Part(text="thinking", thought=True),
            ],
        ),
    ),
    Event(
        author="tool",
        content=types.Content(
            role="user", parts=[types.Part.from_function_response(name="f", response={"ok": 1})]
        ),
        actions=EventActions(route=["a", 1], skip_summarization=True),
    ),
]


@pytest.mark.parametrize("index", range(len(EVENTS)))
def test_known_shapes_read_back_as_pydantic_reads_them(index: int) -> None:
    _same(_stored(EVENTS[index]))


_json_leaf = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    text=st.none() | st.text(max_size=20),
    delta=st.dictionaries(st.text(min_size=1, max_size=6), _json, max_size=4),
    timestamp=st.integers(0, 2**31) | st.floats(0, 2e9, allow_nan=False),
    author=st.text(max_size=6),
    metadata=st.none() | st.dictionaries(st.text(max_size=4), _json, max_size=3),
    call_args=st.none() | st.dictionaries(st.text(min_size=1, max_size=4), _json, max_size=3),
)
def test_random_events_read_back_as_pydantic_reads_them(
    text: str | None,
    delta: dict[str, Any],
    timestamp: float,
    author: str,
    metadata: dict[str, Any] | None,
    call_args: dict[str, Any] | None,
) -> None:
    parts = [] if text is None else [types.Part(text=text)]
    if call_args is not None:
        parts.append(types.Part.from_function_call(name="f", args=call_args))
    event = Event(
        author=author,
        content=types.Content(role="user", parts=parts) if parts else None,
        actions=EventActions(state_delta=delta),
        custom_metadata=metadata,
        timestamp=timestamp,
    )
    _same(_stored(event))


@pytest.mark.parametrize(
    "change",
    [
        {"unknown_key": 1},  # Event ignores extra keys; the fast path defers to it
        {"timestamp": "12.5"},  # a string where a float goes: pydantic's lax coercion
        {"partial": 0},
        {"content": {"parts": [{"text": "x", "thoughtSignature": "AAE="}]}},  # an alias
        {"actions": {"state_delta": {"a": 1}, "route": True}},
    ],
)
def test_payloads_off_the_fast_path_read_back_as_pydantic_reads_them(
    change: dict[str, Any],
) -> None:
    payload = _stored(EVENTS[1]) | change
    _same(payload)


@pytest.mark.parametrize(
    "change",
    [{"author": 5}, {"timestamp": "soon"}, {"content": {"parts": "nope"}}, {"content": 3}],
)
def test_invalid_payloads_fail_as_pydantic_fails(change: dict[str, Any]) -> None:
    payload = _stored(EVENTS[1]) | change
    with pytest.raises(pydantic.ValidationError):
        Event.model_validate(payload)
    with pytest.raises(pydantic.ValidationError):
        decode_event(payload)
