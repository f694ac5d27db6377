"""`python -m benchmarks`: eventlog against the blob rewrite and the raw append floor.

Prints a table per backend, writes a JSON results file and a PNG plot (with the
`bench` extra's matplotlib). `--quick` runs in well under 30 seconds. With the
`bench-peers` extra, the peers of `peers.py` are measured in the same run.
"""

from __future__ import annotations

import os
import platform
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import msgspec

from .contenders import CONTENDERS, Target, sqlite_targets
from .harness import Progress, Settings, run_backend, sqlite_storage
from .peers import discover
from .report import plot, table


@contextmanager
def _postgres_targets(
    dsn: str, names: tuple[str, ...]
) -> Iterator[tuple[dict[str, Target], Callable[[str], int], Callable[[], int]]]:
    """A schema per contender on one server, dropped afterwards."""
    import psycopg

    tag = secrets.token_hex(4)
    schemas = {name: f"bench_{tag}_{name}" for name in names}
    with psycopg.connect(dsn, autocommit=True) as admin:
        for schema in schemas.values():
            admin.execute(f"CREATE SCHEMA {schema}")
        try:

            def storage(name: str) -> int:
                row = admin.execute(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                    (schemas[name],),
                ).fetchone()
                assert row is not None
                return int(row[0])

            def wal() -> int:
                row = admin.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()
                assert row is not None
                return int(row[0])

            yield ({name: Target("postgres", dsn, schemas[name]) for name in names}, storage, wal)
        finally:
            for schema in schemas.values():
                admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _record_markdown(results: dict[str, Any], tables: list[str]) -> str:
    machine = results["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Written by the harness itself (`--record`), from one run; every ratio compares",
        "figures measured in that run on the same database. Targets are from the",
        "performance issue; `NOT met` lines are open work.",
        "",
        f"- command: `{results['command']}`",
        f"- when: {results['when']}",
        f"- machine: {machine['cpus']} CPUs, {machine['platform']}, Python {machine['python']}",
        "",
    ]
    for text in tables:
        lines += ["```", text, "```", ""]
    return "\n".join(lines)


def _steps(settings: Settings, peers: int) -> int:
    # Each peer adds a history and a load per session size.
    return (7 + 2 * peers) * len(settings.sizes) + 4


@click.command()
@click.option("--quick", is_flag=True, help="Small sizes: finishes in under 30 seconds.")
@click.option(
    "--postgres",
    "dsn",
    default=None,
    envvar="EVENTLOG_BENCH_DSN",
    help="Also run on this PostgreSQL server (or EVENTLOG_BENCH_DSN).",
)
@click.option("--no-sqlite", is_flag=True, help="Skip the SQLite backend.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("benchmarks/out"),
    show_default=True,
    help="Where results.json and latency.png go.",
)
@click.option(
    "--record",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write this Markdown file: command, machine, tables, targets.",
)
def main(quick: bool, dsn: str | None, no_sqlite: bool, out: Path, record: Path | None) -> None:
    """Measure eventlog against the blob rewrite and the raw append floor."""
    settings = Settings.quick() if quick else Settings()
    backends = ([] if no_sqlite else ["sqlite"]) + (["postgres"] if dsn else [])
    if not backends:
        raise click.UsageError("nothing to run: give --postgres or drop --no-sqlite")
    results: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": msgspec.to_builtins(settings),
        "backends": {},
    }
    names = CONTENDERS + tuple(discover()[0])
    show = sys.stderr.isatty()
    with click.progressbar(
        length=_steps(settings, len(names) - len(CONTENDERS)) * len(backends),
        label="benchmarking",
        file=sys.stderr if show else open(os.devnull, "w"),
        item_show_func=lambda item: item,
    ) as bar:

        def step(label: str) -> None:
            bar.update(1, label)

        progress = Progress(step)
        if "sqlite" in backends:
            with tempfile.TemporaryDirectory(prefix="eventlog-bench-") as directory:
                path = Path(directory)
                results["backends"]["sqlite"] = run_backend(
                    sqlite_targets(path, names),
                    settings,
                    progress,
                    storage_bytes=sqlite_storage(path),
                )
        if dsn:
            with _postgres_targets(dsn, names) as (targets, storage, wal):
                results["backends"]["postgres"] = run_backend(
                    targets, settings, progress, storage_bytes=storage, wal=wal
                )
    tables = [table(backend, figures) for backend, figures in results["backends"].items()]
    for text in tables:
        click.echo(text)
        click.echo()
    if record is not None:
        record.write_text(_record_markdown(results, tables), "utf-8")
        click.echo(f"recorded: {record}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_bytes(msgspec.json.format(msgspec.json.encode(results)))
    click.echo(f"results: {out / 'results.json'}")
    if plot(results, out / "latency.png"):
        click.echo(f"plot: {out / 'latency.png'}")
    else:
        click.echo("plot skipped: install the bench extra (matplotlib)")


if __name__ == "__main__":
    main()
