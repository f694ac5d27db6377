"""How long a new version takes to reach a watcher in another process.

    python -m benchmarks.watch_lag --url postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.watch_lag --url sqlite:////tmp/lag.db --versions 200

A writer process appends `--versions` versions, one every `--interval-ms`, and
prints the wall-clock time each `save_delta` returned; the watcher (this
process) notes when `watch` yielded each version. The lag is yield time minus
the writer's return time: the writer returns after COMMIT, and the
notification may arrive first, so a lag can be slightly negative. The target
(DESIGN.md) is 100 ms; the figures printed are the median, p95 and the largest.
`python -m benchmarks.watch_lag write URL SESSION N INTERVAL_MS` is the writer.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Final

import click

import eventlog
from eventlog import Entry, SessionDelta

__all__ = ["Lags", "measure", "writer_command"]

TARGET_MS: Final = 100.0


def writer_command(url: str, session_id: str, versions: int, interval_ms: float) -> list[str]:
    """The command line of a writer process (run from the repository root)."""
    return [
        sys.executable,
        "-m",
        "benchmarks.watch_lag",
        "write",
        url,
        session_id,
        str(versions),
        str(interval_ms),
    ]


def write(url: str, session_id: str, versions: int, interval_ms: float) -> None:
    """Append `versions` versions, printing ``version returned_at`` for each."""
    with eventlog.connect(url) as store:
        for index in range(versions):
            result = store.save_delta(
                session_id, SessionDelta(new_entries=[Entry(id=f"w{index}", payload={"i": index})])
            )
            print(result.version, time.time(), flush=True)
            time.sleep(interval_ms / 1000)


class Lags:
    """Yield times of a watcher against the writer's return times, by version."""

    def __init__(self) -> None:
        self.yielded: dict[int, float] = {}
        self.returned: dict[int, float] = {}
        self.order: list[int] = []

    def read_writer(self, output: str) -> None:
        for line in output.split("\n"):
            if line.strip():
                version, moment = line.split()
                self.returned[int(version)] = float(moment)

    def lags_ms(self) -> list[float]:
        return [
            (self.yielded[v] - self.returned[v]) * 1000 for v in self.order if v in self.returned
        ]

    def summary(self) -> str:
        lags = sorted(self.lags_ms())
        if not lags:
            return "no versions"
        p95 = lags[min(len(lags) - 1, round(0.95 * (len(lags) - 1)))]
        return (
            f"{len(lags)} versions: median {statistics.median(lags):.1f} ms, "
            f"p95 {p95:.1f} ms, max {lags[-1]:.1f} ms (target {TARGET_MS:.0f} ms)"
        )


def _seed(url: str, session_id: str) -> None:
    with eventlog.connect(url) as store:
        store.delete(session_id)
        store.save_delta(session_id, SessionDelta(new_entries=[Entry(id="seed", payload={})]))


def measure(
    url: str,
    session_id: str,
    versions: int,
    interval_ms: float,
    *,
    use_async: bool = False,
    cwd: str | None = None,
) -> Lags:
    """Run a writer process and watch its versions here; returns what was seen when.

    The session is created first (version 1, not counted) and deleted after,
    which ends the watch.
    """
    _seed(url, session_id)
    lags = Lags()
    command = writer_command(url, session_id, versions, interval_ms)
    last = versions + 1

    def seen(version: int) -> bool:
        lags.yielded[version] = time.time()
        lags.order.append(version)
        return version >= last

    writer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=cwd)
    try:
        if use_async:
            asyncio.run(_watch_async(url, session_id, seen))
        else:
            _watch_sync(url, session_id, seen)
        output, _ = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    if writer.returncode != 0:
        raise RuntimeError(f"the writer process failed with status {writer.returncode}")
    lags.read_writer(output)
    with eventlog.connect(url) as store:
        store.delete(session_id)
    return lags


def _watch_sync(url: str, session_id: str, seen: Callable[[int], bool]) -> None:
    with eventlog.connect(url) as store:
        for change in store.watch(session_id, after_version=1):
            if seen(change.version):
                return


async def _watch_async(url: str, session_id: str, seen: Callable[[int], bool]) -> None:
    async with await eventlog.connect_async(url) as store:
        async for change in store.watch(session_id, after_version=1):
            if seen(change.version):
                return


@click.group(invoke_without_command=True)
@click.option("--url", default=None, help="The store to measure on.")
@click.option("--versions", default=100, show_default=True)
@click.option("--interval-ms", default=20.0, show_default=True)
@click.pass_context
def main(ctx: click.Context, url: str | None, versions: int, interval_ms: float) -> None:
    """Measure the watch lag across processes (or, with `write`, be the writer)."""
    if ctx.invoked_subcommand is not None:
        return
    if url is None:
        raise click.UsageError("--url is needed")
    for name, use_async in (("sync", False), ("async", True)):
        lags = measure(url, "watch-lag", versions, interval_ms, use_async=use_async)
        click.echo(f"{name} watcher on {url.partition('://')[0]}: {lags.summary()}")


@main.command("write")
@click.argument("url")
@click.argument("session_id")
@click.argument("versions", type=int)
@click.argument("interval_ms", type=float)
def write_command(url: str, session_id: str, versions: int, interval_ms: float) -> None:
    """Be the writer process."""
    write(url, session_id, versions, interval_ms)


if __name__ == "__main__":
    main()
