"""`python -m benchmarks.adk`: eventlog's ADK session service against ADK's DatabaseSessionService.

Both run in one process on SQLite files side by side (and, with ``--postgres URL``,
on the same PostgreSQL server, each in a scratch database of its own; ADK's side
goes through SQLAlchemy's ``postgresql+psycopg`` dialect, so no driver beyond
eventlog's own psycopg). Figures are medians, and each target is a ratio within
the run (issue #17):

- ``append_flat``: eventlog's append at `--events` events / at 10, sampled in turns
  (target <= 1.2);
- ``get_full``: ADK's full ``get_session`` at `--events` / eventlog's (>= 3);
- ``get_recent20``: the same with ``num_recent_events=20`` (>= 2);
- ``list_one_user``: ADK's ``list_sessions`` for one user among `--sessions` other
  users' sessions / eventlog's (>= 20); also shown among half as many.

Needs ``google-adk``, ``sqlalchemy[asyncio]`` and ``aiosqlite`` (``.[adk,bench-peers]``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
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


async def _append_costs(
    service: BaseSessionService, small: str, large: str, repeats: int
) -> tuple[float, float]:
    """Median append at each size, the two sizes taking turns (so load on the box hits both)."""
    sessions = []
    for sid in (small, large):
        session = await service.get_session(app_name="bench", user_id="u", session_id=sid)
        assert session is not None
        sessions.append(session)
    counter = iter(range(10**9))
    samples: tuple[list[float], list[float]] = ([], [])
    for n in range(repeats + 1):
        for session, into in zip(sessions, samples, strict=True):
            started = time.perf_counter()
            await service.append_event(session, _event(next(counter)))
            if n:  # the first round warms up
                into.append(time.perf_counter() - started)
    return statistics.median(samples[0]), statistics.median(samples[1])


async def measure(
    service: BaseSessionService, *, events: int, sessions: int, repeats: int
) -> dict[str, float]:
    """Median seconds of each call on one service.

    ``list_one_user`` is measured twice: among half of `sessions` other users'
    sessions, then among all of them.
    """
    small = await service.create_session(app_name="bench", user_id="u", session_id="small")
    for n in range(10):
        await service.append_event(small, _event(n))
    large = await service.create_session(app_name="bench", user_id="u", session_id="large")
    for n in range(events):
        await service.append_event(large, _event(n))
    at_small, at_large = await _append_costs(service, "small", "large", repeats)
    figures = {"append@10": at_small, f"append@{events}": at_large}

    async def get(config: GetSessionConfig | None) -> None:
        await service.get_session(app_name="bench", user_id="u", session_id="large", config=config)

    figures["get_full"] = await _median(lambda: get(None), repeats)
    figures["get_recent20"] = await _median(
        lambda: get(GetSessionConfig(num_recent_events=20)), repeats
    )

    async def listing(user: str) -> None:
        listed = await service.list_sessions(app_name="bench", user_id=user)
        assert len(listed.sessions) == 1

    made = 0
    for total in (sessions // 2, sessions):
        for n in range(made, total):
            await service.create_session(app_name="bench", user_id=f"other-{n}", session_id=f"s{n}")
        made = total
        figures[f"list_one_user@{total}"] = await _median(
            functools.partial(listing, f"other-{total // 2}"), repeats
        )
    return figures


async def _run(
    name: str, eventlog_url: str, adk_url: str, *, events: int, sessions: int, repeats: int
) -> dict[str, float]:
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
    click.echo(f"[{name}] {events} events; one user among {sessions // 2} and {sessions} others")
    for key in ours:
        click.echo(
            f"  {key:20} eventlog {ours[key] * 1e3:9.3f} ms   adk {theirs[key] * 1e3:9.3f} ms"
        )
    ratios = {
        "append_flat": ours[f"append@{events}"] / ours["append@10"],
        "get_full": theirs["get_full"] / ours["get_full"],
        "get_recent20": theirs["get_recent20"] / ours["get_recent20"],
        "list_one_user": theirs[f"list_one_user@{sessions}"] / ours[f"list_one_user@{sessions}"],
    }
    half = f"list_one_user@{sessions // 2}"
    click.echo(f"  {half:20} {theirs[half] / ours[half]:7.2f}x (no target)")
    for key, ratio in ratios.items():
        target = TARGETS[key]
        met = ratio <= target if key == "append_flat" else ratio >= target
        sign = "<=" if key == "append_flat" else ">="
        click.echo(
            f"  {key:20} {ratio:7.2f}x (target {sign} {target}) {'met' if met else 'NOT MET'}"
        )
    return ratios


@contextlib.contextmanager
def _scratch_databases(server: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases on the server (the two share table names), dropped after."""
    import psycopg

    tag = f"adk_bench_{os.getpid()}"
    names = (f"{tag}_eventlog", f"{tag}_adk")
    with psycopg.connect(server, autocommit=True) as admin:
        for db in names:
            admin.execute(f"DROP DATABASE IF EXISTS {db}")
            admin.execute(f"CREATE DATABASE {db}")
    try:
        yield _url(server, names[0], "postgresql"), _url(server, names[1], "postgresql+psycopg")
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            for db in names:
                admin.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _url(server: str, dbname: str, scheme: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(server)
    user = params.get("user", "postgres")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", 5432)
    return f"{scheme}://{user}@{host}:{port}/{dbname}"


@click.command()
@click.option("--events", default=3000, show_default=True)
@click.option("--sessions", default=10000, show_default=True, help="other users' sessions")
@click.option("--repeats", default=20, show_default=True)
@click.option(
    "--postgres",
    "postgres_server",
    default=None,
    help="a PostgreSQL server (postgresql://user@host:port/db); two scratch databases are "
    "made there and dropped, ADK's DatabaseSessionService reaching its one via psycopg",
)
def main(events: int, sessions: int, repeats: int, postgres_server: str | None) -> None:
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
    if postgres_server:
        with _scratch_databases(postgres_server) as (ours, theirs):
            asyncio.run(
                _run("postgres", ours, theirs, events=events, sessions=sessions, repeats=repeats)
            )


if __name__ == "__main__":
    main()
