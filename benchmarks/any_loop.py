"""What an async PostgreSQL store usable from any loop costs per call.

``python -m benchmarks.any_loop --postgres DSN [--calls N]``: the loop-bound driver
(`_postgres.driver_async`, usable on the loop that opened it only) against the two
stores usable from any loop and thread: `eventlog.postgres.AsyncPostgresStore`
(each call hops to a worker thread running the sync driver) and
`HomeLoopPostgresStore` (each call hops to the store's own loop thread), in one
run, alternating, medians of `info` and of a one-entry `save_delta`. The
difference is the hop.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time

import click

from eventlog import Entry, SessionDelta
from eventlog._postgres import driver_async
from eventlog.postgres import AsyncPostgresStore, HomeLoopPostgresStore

__all__ = ["measure"]


async def measure(dsn: str, calls: int) -> dict[str, dict[str, float]]:
    """Median ms per call: {"loop-bound"|"threads"|"home loop": {"info": ..., ...}}."""
    stores = {
        "loop-bound": await driver_async.AsyncPostgresStore.open(dsn),
        "threads": await AsyncPostgresStore.open(dsn),
        "home loop": await HomeLoopPostgresStore.open(dsn),
    }
    tag = secrets.token_hex(3)
    runs: dict[str, dict[str, list[float]]] = {n: {"info": [], "save_delta": []} for n in stores}
    try:
        for index in range(calls):
            for name, store in stores.items():
                session_id = f"hop-{tag}-{name}"
                started = time.perf_counter()
                await store.save_delta(session_id, SessionDelta([Entry(f"e{index}")]))
                runs[name]["save_delta"].append(time.perf_counter() - started)
                started = time.perf_counter()
                await store.info(session_id)
                runs[name]["info"].append(time.perf_counter() - started)
    finally:
        for store in stores.values():
            await store.close()
    return {
        name: {call: statistics.median(times) * 1000 for call, times in figures.items()}
        for name, figures in runs.items()
    }


@click.command()
@click.option("--postgres", "dsn", required=True, help="a PostgreSQL URL")
@click.option("--calls", default=500, show_default=True)
def main(dsn: str, calls: int) -> None:
    figures = asyncio.run(measure(dsn, calls))
    for call in ("info", "save_delta"):
        bound = figures["loop-bound"][call]
        hops = ", ".join(
            f"{name} {figures[name][call]:.3f} ms (hop {figures[name][call] - bound:+.3f} ms, "
            f"{figures[name][call] / bound:.2f}x)"
            for name in ("threads", "home loop")
        )
        click.echo(f"{call}: loop-bound {bound:.3f} ms, {hops}")


if __name__ == "__main__":
    main()
