"""A real ADK `Runner` and `LlmAgent` on eventlog's session service, with a fake model.

The fake model answers with how many user turns its request holds, so a reply
proves the runner read the whole history back from the store; a fresh process
resumes the conversation from the same SQLite file.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

pytest.importorskip("google.adk")

from google.adk.agents import LlmAgent
from google.adk.models.base_llm import BaseLlm
from google.adk.models.llm_request import LlmRequest
from google.adk.models.llm_response import LlmResponse
from google.adk.runners import Runner
from google.genai import types

import eventlog
from eventlog.integrations.adk import EventlogSessionService

TURNS = 50


class CountingLlm(BaseLlm):
    """Replies ``seen <n>``: the number of user turns in the request's history."""

    model: str = "counting"

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        users = sum(1 for content in llm_request.contents if content.role == "user")
        yield LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text=f"seen {users}")])
        )


def _agent() -> LlmAgent:
    return LlmAgent(name="counter", model=CountingLlm(), output_key="last_reply")


async def _turn(runner: Runner, session_id: str, text: str) -> str:
    replies = []
    message = types.Content(role="user", parts=[types.Part(text=text)])
    async for event in runner.run_async(user_id="u", session_id=session_id, new_message=message):
        if event.content and event.content.parts and event.content.parts[0].text:
            replies.append(event.content.parts[0].text)
    return replies[-1]


def test_runner_fifty_turns_then_a_fresh_process_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'adk.db'}"

    async def main() -> None:
        store = await eventlog.connect_async(url)
        try:
            service = EventlogSessionService(store)
            runner = Runner(app_name="app", agent=_agent(), session_service=service)
            session = await service.create_session(app_name="app", user_id="u", session_id="chat")
            for turn in range(1, TURNS + 1):
                assert await _turn(runner, session.id, f"turn {turn}") == f"seen {turn}"
            got = await service.get_session(app_name="app", user_id="u", session_id="chat")
            assert got is not None
            assert len(got.events) == 2 * TURNS
            assert [e.author for e in got.events[:2]] == ["user", "counter"]
            assert got.state == {"last_reply": f"seen {TURNS}"}
            assert got.last_update_time == got.events[-1].timestamp
        finally:
            await store.close()

    asyncio.run(main())
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import eventlog
        from google.adk.runners import Runner
        from eventlog.integrations.adk import EventlogSessionService
        from test_adk_runner import _agent, _turn

        async def main():
            store = await eventlog.connect_async({url!r})
            service = EventlogSessionService(store)
            runner = Runner(app_name="app", agent=_agent(), session_service=service)
            print(await _turn(runner, "chat", "again"))
            got = await service.get_session(app_name="app", user_id="u", session_id="chat")
            print(len(got.events), got.state["last_reply"])
            await store.close()

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == [f"seen {TURNS + 1}", f"{2 * TURNS + 2} seen {TURNS + 1}"]
