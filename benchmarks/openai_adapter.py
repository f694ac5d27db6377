"""The OpenAI Agents adapter's cost per call against the size of the session.

``python -m benchmarks.openai_adapter [--postgres DSN] [--turns N]`` measures, on
SQLite and (with a DSN) PostgreSQL, in one run:

- `add_items` of one turn (a user message and an answer) on a session holding
  2,000 items against one holding 10: target ratio <= 1.2 (O(delta), not O(history));
- `get_items(limit=20)` on a session of 2,000 items against one of 20: target <= 1.5.

The two sessions of a ratio are timed alternately, turn by turn, and compared by
their medians, so drift of a shared machine hits both alike.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import click

import eventlog
from eventlog.integrations.openai_agents import EventlogSession

from .report import Check

__all__ = ["measure"]


def _turn(index: int) -> list[dict[str, object]]:
    return [
        {"role": "user", "content": f"question {index} " + "x" * 200},
        {"role": "assistant", "content": f"answer {index} " + "y" * 800},
    ]


async def _filled(store: eventlog.AsyncStore, session_id: str, items: int) -> EventlogSession:
    session = EventlogSession(session_id, store)
    for start in range(0, items, 200):
        batch = [item for index in range(start // 2, (start + 200) // 2) for item in _turn(index)]
        await session.add_items(batch[: items - start])  # type: ignore[arg-type]
    return session


async def _median_ms(runs: list[float]) -> float:
    return statistics.median(runs) * 1000


async def measure(url: str, turns: int) -> tuple[dict[str, float], list[Check]]:
    """Medians in ms and the two checks, on the store at `url`."""
    store = await eventlog.connect_async(url)
    tag = secrets.token_hex(3)
    try:
        small = await _filled(store, f"small-{tag}", 10)
        large = await _filled(store, f"large-{tag}", 2000)
        short = await _filled(store, f"short-{tag}", 20)
        add: dict[str, list[float]] = {"small": [], "large": []}
        read: dict[str, list[float]] = {"short": [], "large": []}
        for index in range(turns):
            for name, session in (("small", small), ("large", large)):
                started = time.perf_counter()
                await session.add_items(_turn(index))  # type: ignore[arg-type]
                add[name].append(time.perf_counter() - started)
            for name, session in (("short", short), ("large", large)):
                started = time.perf_counter()
                items = await session.get_items(limit=20)
                read[name].append(time.perf_counter() - started)
                assert len(items) == 20
    finally:
        await store.close()
    figures = {
        "add_items_at_10_ms": await _median_ms(add["small"]),
        "add_items_at_2000_ms": await _median_ms(add["large"]),
        "get_items_20_at_20_ms": await _median_ms(read["short"]),
        "get_items_20_at_2000_ms": await _median_ms(read["large"]),
    }
    checks = [
        Check(
            "add_items of one turn at 2,000 items vs at 10",
            figures["add_items_at_2000_ms"] / figures["add_items_at_10_ms"],
            1.2,
            at_most=True,
        ),
        Check(
            "get_items(limit=20) at 2,000 items vs at 20",
            figures["get_items_20_at_2000_ms"] / figures["get_items_20_at_20_ms"],
            1.5,
            at_most=True,
        ),
    ]
    return figures, checks


@click.command()
@click.option("--postgres", "dsn", default=None, help="a PostgreSQL URL to measure too")
@click.option("--turns", default=100, show_default=True, help="timed calls per session")
def main(dsn: str | None, turns: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        urls = {"sqlite": f"sqlite:///{Path(directory) / 'adapter.db'}"}
        if dsn:
            urls["postgres"] = dsn
        for backend, url in urls.items():
            figures, checks = asyncio.run(measure(url, turns))
            click.echo(f"{backend}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
            for check in checks:
                click.echo(f"  {check.line()}")


if __name__ == "__main__":
    main()
