"""`python -m benchmarks.adk`: eventlog's ADK session service against ADK's DatabaseSessionService.

Both run in one process on the same SQLite file (and, with ``--postgres URL``, the
same PostgreSQL server; ADK's side needs ``asyncpg``). Figures are medians, and
each target is a ratio within the run (issue #17):

- ``append_flat``: eventlog's append at `--events` events / at 10 (target <= 1.2);
- ``get_full``: ADK's full ``get_session`` at `--events` / eventlog's (>= 3);
- ``get_recent20``: the same with ``num_recent_events=20`` (>= 2);
- ``list_one_user``: ADK's ``list_sessions`` for one user among `--sessions` / eventlog's (>= 20).

Needs ``google-adk``, ``sqlalchemy[asyncio]`` and ``aiosqlite`` (``.[adk,bench-peers]``).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import BaseSessionService, GetSessionConfig
from google.genai import types

import eventlog
from eventlog.integrations.adk import EventlogSessionService

TARGETS = {"append_flat": 1.2, "get_full": 3.0, "get_recent20": 2.0, "list_one_user": 20.0}


def _event(n: int) -> Event:
    return Event(
        author="user" if n % 2 == 0 else "agent",
        invocation_id=f"inv-{n // 2}",
        content=types.Content(role="user", parts=[types.Part(text=f"message {n} " + "x" * 200)]),
        actions=EventActions(state_delta={"turn": n} if n % 10 == 0 else {}),
    )


async def _median(call: Callable[[], Awaitable[Any]], repeats: int) -> float:
    await call()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def _append_cost(service: BaseSessionService, sid: str, repeats: int) -> float:
    session = await service.get_session(app_name="bench", user_id="u", session_id=sid)
    assert session is not None
    counter = iter(range(10**9))

    async def one() -> None:
        await service.append_event(session, _event(next(counter)))

    return await _median(one, repeats)


async def measure(
    service: BaseSessionService, *, events: int, sessions: int, repeats: int
) -> dict[str, float]:
    """Median seconds of each call on one service."""
    small = await service.create_session(app_name="bench", user_id="u", session_id="small")
    for n in range(10):
        await service.append_event(small, _event(n))
    large = await service.create_session(app_name="bench", user_id="u", session_id="large")
    for n in range(events):
        await service.append_event(large, _event(n))
    for n in range(sessions):
        await service.create_session(app_name="bench", user_id=f"other-{n}", session_id=f"s{n}")
    figures = {
        "append@10": await _append_cost(service, "small", repeats),
        f"append@{events}": await _append_cost(service, "large", repeats),
    }

    async def get(config: GetSessionConfig | None) -> None:
        await service.get_session(app_name="bench", user_id="u", session_id="large", config=config)

    figures["get_full"] = await _median(lambda: get(None), repeats)
    figures["get_recent20"] = await _median(
        lambda: get(GetSessionConfig(num_recent_events=20)), repeats
    )

    async def listing() -> None:
        listed = await service.list_sessions(app_name="bench", user_id=f"other-{sessions // 2}")
        assert len(listed.sessions) == 1

    figures["list_one_user"] = await _median(listing, repeats)
    return figures


async def _run(
    name: str, eventlog_url: str, adk_url: str, *, events: int, sessions: int, repeats: int
) -> None:
    store = await eventlog.connect_async(eventlog_url)
    ours = await measure(
        EventlogSessionService(store), events=events, sessions=sessions, repeats=repeats
    )
    await store.close()
    # Imported here: it needs sqlalchemy, which `measure` on eventlog alone does not.
    from google.adk.sessions.database_session_service import DatabaseSessionService

    adk = DatabaseSessionService(adk_url)
    theirs = await measure(adk, events=events, sessions=sessions, repeats=repeats)
    await adk.close()
    click.echo(f"[{name}] {events} events, one user among {sessions + 2} sessions")
    for key in ours:
        click.echo(
            f"  {key:16} eventlog {ours[key] * 1e3:9.3f} ms   adk {theirs[key] * 1e3:9.3f} ms"
        )
    ratios = {
        "append_flat": ours[f"append@{events}"] / ours["append@10"],
        "get_full": theirs["get_full"] / ours["get_full"],
        "get_recent20": theirs["get_recent20"] / ours["get_recent20"],
        "list_one_user": theirs["list_one_user"] / ours["list_one_user"],
    }
    for key, ratio in ratios.items():
        target = TARGETS[key]
        met = ratio <= target if key == "append_flat" else ratio >= target
        sign = "<=" if key == "append_flat" else ">="
        click.echo(f"  {key:16} {ratio:7.2f}x (target {sign} {target}) {'ok' if met else 'MISSED'}")


@click.command()
@click.option("--events", default=3000, show_default=True)
@click.option("--sessions", default=10000, show_default=True)
@click.option("--repeats", default=20, show_default=True)
@click.option("--postgres", "postgres_url", default=None, help="eventlog URL of a PostgreSQL db")
@click.option("--postgres-adk", "postgres_adk", default=None, help="the same db for ADK (asyncpg)")
def main(
    events: int, sessions: int, repeats: int, postgres_url: str | None, postgres_adk: str | None
) -> None:
    """Run the ADK session service comparison."""
    with tempfile.TemporaryDirectory() as folder:
        ev, db = Path(folder) / "eventlog.db", Path(folder) / "adk.db"
        asyncio.run(
            _run(
                "sqlite",
                f"sqlite:///{ev}",
                f"sqlite+aiosqlite:///{db}",
                events=events,
                sessions=sessions,
                repeats=repeats,
            )
        )
    if postgres_url and postgres_adk:
        asyncio.run(
            _run(
                "postgres",
                postgres_url,
                postgres_adk,
                events=events,
                sessions=sessions,
                repeats=repeats,
            )
        )


if __name__ == "__main__":
    main()
