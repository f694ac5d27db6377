"""`python -m benchmarks.reads`: the framework reads cost O(what they return), not O(session).

Each read (`info`, `entry`, `path(limit=20)`, `scan` of 20 ids) is timed on a
small session and on a large one of the same store, in one run; the figure is
the ratio large / small (target: <= 1.5, where `load` grows with the session).
`--postgres URL` measures PostgreSQL too, in a schema of its own, dropped after.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import click

import eventlog
from eventlog import Entry, SessionDelta

TARGET = 1.5
_BATCH = 500


def _fill(store: eventlog.Store, session_id: str, size: int) -> None:
    """A chain of `size` entries, ids `w:<n>` zero-padded so they sort as written."""
    parent: str | None = None
    for start in range(0, size, _BATCH):
        batch = []
        for n in range(start, min(start + _BATCH, size)):
            entry_id = f"w:{n:08d}"
            batch.append(Entry(entry_id, parent, payload={"text": "x" * 200, "n": n}))
            parent = entry_id
        store.save_delta(session_id, SessionDelta(batch, leaf_id=parent))


def _median_seconds(call: Callable[[], object], repeats: int) -> float:
    call()  # warm: statements prepared, pages cached
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def measure(
    store: eventlog.Store, *, small: int, large: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Median seconds of each read at both sizes, and their ratio."""
    tag = secrets.token_hex(4)
    sizes = {
        "small": (f"bench-reads-{tag}-small", small),
        "large": (f"bench-reads-{tag}-large", large),
    }
    for session_id, size in sizes.values():
        _fill(store, session_id, size)
    figures: dict[str, dict[str, float]] = {}
    try:
        for name, read in {
            "info": lambda sid, n: store.info(sid),
            "entry": lambda sid, n: store.entry(sid, f"w:{n // 2:08d}"),
            "path(limit=20)": lambda sid, n: store.path(sid, limit=20),
            "scan 20": lambda sid, n: store.scan(sid, id_prefix="w:", limit=20),
            "scan 20, deep page": lambda sid, n: store.scan(
                sid, id_prefix="w:", after_id=f"w:{n - 30:08d}", limit=20
            ),
            "load (for contrast)": lambda sid, n: store.load(sid),
        }.items():
            seconds = {
                label: _median_seconds(partial(read, sid, n), repeats)
                for label, (sid, n) in sizes.items()
            }
            figures[name] = {**seconds, "ratio": seconds["large"] / seconds["small"]}
    finally:
        for session_id, _ in sizes.values():
            store.delete(session_id)
    return figures


def table(backend: str, figures: dict[str, dict[str, float]], *, small: int, large: int) -> str:
    lines = [f"{backend}: median per call, session of {small} vs {large} entries"]
    for name, row in figures.items():
        verdict = (
            "" if name.startswith("load") else (" ok" if row["ratio"] <= TARGET else " NOT met")
        )
        lines.append(
            f"  {name:<20} {row['small'] * 1e6:9.0f} us {row['large'] * 1e6:9.0f} us "
            f"ratio {row['ratio']:5.2f}{verdict}"
        )
    return "\n".join(lines)


@contextmanager
def _postgres(dsn: str) -> Iterator[eventlog.Store]:
    import psycopg

    schema = f"bench_reads_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            separator = "&" if "?" in dsn else "?"
            with eventlog.connect(f"{dsn}{separator}options=-csearch_path%3D{schema}") as store:
                yield store
        finally:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@click.command()
@click.option("--quick", is_flag=True, help="2,000 entries instead of 50,000.")
@click.option("--postgres", "dsn", default=None, envvar="EVENTLOG_BENCH_DSN")
def main(quick: bool, dsn: str | None) -> None:
    small, large, repeats = (20, 2_000, 20) if quick else (20, 50_000, 50)
    with (
        tempfile.TemporaryDirectory() as directory,
        eventlog.connect(f"sqlite:///{Path(directory) / 'reads.db'}") as store,
    ):
        click.echo(
            table(
                "sqlite",
                measure(store, small=small, large=large, repeats=repeats),
                small=small,
                large=large,
            )
        )
    if dsn:
        with _postgres(dsn) as store:
            click.echo(
                table(
                    "postgres",
                    measure(store, small=small, large=large, repeats=repeats),
                    small=small,
                    large=large,
                )
            )


if __name__ == "__main__":
    main()
