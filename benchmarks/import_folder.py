"""Folder import throughput and peak memory: ``eventlog import --format F DIR``.

``python -m benchmarks.import_folder`` builds a Claude Code project folder and a
pi sessions folder of ``--mb`` MB each in a temporary directory
(`benchmarks.big_sessions`: real fixtures' records, repeated), then runs the
command line on each, as a child process, into a SQLite file and into a fresh
PostgreSQL schema (``--dsn``, default ``$EVENTLOG_TEST_DSN``; skipped without
one). It reports entries/s, MB/s and the child's peak RSS (``os.wait4``).

The baseline, measured in the same run, is the same import of a folder an
eighth of the size: peak RSS must not grow with the folder (target: at most
1.25x the small folder's) and the rate must hold (at least 0.5x). ``--quick``
uses 4 MB (a smoke run, not a measurement).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

import click
import msgspec

from .big_sessions import write_claude_project, write_pi_folder

RSS_TARGET: Final = 1.25
RATE_TARGET: Final = 0.5
_SUMMARY: Final = re.compile(
    r"imported (\d+) of (\d+) files: (\d+) entries, (\d+) new; (\d+) failed"
)


class Run(msgspec.Struct, frozen=True):
    """One ``eventlog import`` of a folder."""

    format: str
    backend: str
    folder_bytes: int
    files: int
    entries: int
    seconds: float
    peak_rss_kb: int

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.folder_bytes / 1e6 / self.seconds


def build_folder(format: str, folder: Path, megabytes: float) -> None:
    """A folder of about `megabytes` MB in the format's layout."""
    total = int(megabytes * 1024 * 1024)
    if format == "claude-code":
        # Sessions of 2 MB (or smaller for a tiny folder), each with a sub-agent file.
        write_claude_project(folder, total_bytes=total, session_bytes=min(2 << 20, total // 4))
    elif format == "pi":
        write_pi_folder(folder, total_bytes=total)
    else:
        raise ValueError(f"no folder generator for {format!r}")


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*.jsonl"))


def import_once(format: str, backend: str, url: str, folder: Path) -> Run:
    """Run ``eventlog import`` on `folder` in a child process and measure it."""
    command = [sys.executable, "-m", "eventlog", "import", "--url", url, "--format", format]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        with subprocess.Popen(
            [*command, os.fspath(folder)], stdout=subprocess.PIPE, stderr=errors
        ) as child:
            out = child.stdout.read()  # type: ignore[union-attr]
            # wait4, not wait: the child's own resource usage, peak RSS included.
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - started
            child.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        errors.seek(0)
        err = errors.read()
    found = _SUMMARY.search(out.decode())
    if child.returncode != 0 or found is None:
        raise RuntimeError(f"import failed ({child.returncode}): {err.decode()[-2000:]}")
    imported, total, entries, _, failed = map(int, found.groups())
    if failed or imported != total:
        raise RuntimeError(f"{failed} of {total} files failed: {err.decode()[-2000:]}")
    return Run(format, backend, _folder_bytes(folder), total, entries, seconds, usage.ru_maxrss)


@contextmanager
def _sqlite_url(directory: Path) -> Iterator[str]:
    path = directory / f"import-{secrets.token_hex(4)}.db"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


@contextmanager
def _postgres_url(dsn: str) -> Iterator[str]:
    import psycopg

    schema = f"bench_import_{secrets.token_hex(4)}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in dsn else "?"
    try:
        yield f"{dsn}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def measure(
    formats: tuple[str, ...],
    megabytes: float,
    directory: Path,
    *,
    dsn: str | None,
    report: Callable[[str], None] = click.echo,
) -> list[tuple[Run, Run]]:
    """(small folder, full folder) runs per format and backend."""
    backends: list[tuple[str, Callable[[], AbstractContextManager[str]]]] = [
        ("sqlite", lambda: _sqlite_url(directory))
    ]
    if dsn:
        backends.append(("postgres", lambda: _postgres_url(dsn)))
    pairs = []
    for format in formats:
        folders = []
        for label, size in (("small", megabytes / 8), ("full", megabytes)):
            folder = directory / f"{format}-{label}"
            build_folder(format, folder, size)
            folders.append(folder)
        for backend, url_of in backends:
            runs = []
            for folder in folders:
                with url_of() as url:
                    run = import_once(format, backend, url, folder)
                report(line(run))
                runs.append(run)
            pairs.append((runs[0], runs[1]))
        for folder in folders:
            shutil.rmtree(folder)
    return pairs


def line(run: Run) -> str:
    """One run, as the report prints it."""
    return (
        f"{run.format:11} {run.backend:8} {run.folder_bytes / 1e6:8.1f} MB "
        f"{run.files:5} files {run.entries:9} entries {run.seconds:8.1f} s "
        f"{run.entries_per_s:8.0f} entries/s {run.mb_per_s:6.2f} MB/s "
        f"peak RSS {run.peak_rss_kb / 1024:6.1f} MB"
    )


def verdicts(pairs: list[tuple[Run, Run]]) -> list[str]:
    """The targets, met or not, per format and backend."""
    found = []
    for small, full in pairs:
        rss = full.peak_rss_kb / small.peak_rss_kb
        rate = full.entries_per_s / small.entries_per_s
        found.append(
            f"{full.format} {full.backend}: peak RSS {rss:.2f}x the 1/8 folder's "
            f"(<= {RSS_TARGET}x: {'met' if rss <= RSS_TARGET else 'NOT met'}); "
            f"rate {rate:.2f}x (>= {RATE_TARGET}x: {'met' if rate >= RATE_TARGET else 'NOT met'})"
        )
    return found


@click.command()
@click.option("--mb", default=1024.0, show_default=True, help="Size of each folder.")
@click.option("--quick", is_flag=True, help="4 MB folders: a smoke run.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(["claude-code", "pi"]),
    default=("claude-code", "pi"),
    show_default=True,
)
@click.option(
    "--dsn",
    default=lambda: os.environ.get("EVENTLOG_TEST_DSN"),
    help="PostgreSQL server for the postgres runs (default $EVENTLOG_TEST_DSN; none: skipped).",
)
@click.option("--sqlite-only", is_flag=True, help="Skip PostgreSQL.")
def main(
    mb: float, quick: bool, formats: tuple[str, ...], dsn: str | None, sqlite_only: bool
) -> None:
    """Import generated folders with `eventlog import`; print entries/s and peak RSS."""
    megabytes = 4.0 if quick else mb
    with tempfile.TemporaryDirectory(prefix="eventlog-import-folder-") as directory:
        pairs = measure(
            tuple(formats), megabytes, Path(directory), dsn=None if sqlite_only else dsn
        )
    for verdict in verdicts(pairs):
        click.echo(verdict)


if __name__ == "__main__":
    main()
