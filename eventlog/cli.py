"""The `eventlog` command: a thin layer where every action is one library call."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import click

from .connect import DEFAULT_URL, connect
from .demo import DEMO_SESSION_ID, write_demo_session
from .errors import EventlogError
from .model import SessionData
from .store import Store
from .tree import entry_label, render_tree

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

_url_option = click.option(
    "--url",
    envvar="EVENTLOG_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Store URL (memory://, sqlite:///file.db, postgresql://...); or EVENTLOG_URL.",
)


def _clean_errors(command: F) -> F:
    """Print an eventlog error as one line and exit 1, never a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except EventlogError as exc:
            click.echo(f"eventlog: {type(exc).__name__}: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


@contextmanager
def _opened(url: str, **options: Any) -> Iterator[Store]:
    store = connect(url, **options)
    try:
        yield store
    finally:
        store.close()


@click.group()
@click.version_option(package_name="eventlog")
def cli() -> None:
    """Agent sessions stored as an append-only event log."""


@cli.command()
@_url_option
@_clean_errors
def migrate(url: str) -> None:
    """Create or upgrade the schema of the store at URL."""
    with _opened(url, migrate=True):
        click.echo(f"schema up to date: {url}")


@cli.command()
@_url_option
@click.option("--session", "session_id", default=DEMO_SESSION_ID, show_default=True)
@_clean_errors
def demo(url: str, session_id: str) -> None:
    """Write a realistic agent session turn by turn, then show its tree and stats."""
    with _opened(url) as store:
        results = write_demo_session(store, session_id)
        for index, result in enumerate(results, 1):
            click.echo(
                f"write {index}: version {result.version}, appended {len(result.appended)}, "
                f"tombstoned {len(result.tombstoned)}"
            )
        before = results[-3].version
        click.echo(f"\nbefore the compaction (load at_version={before}):")
        _echo_tree(_require_session(store.load(session_id, at_version=before), session_id))
        click.echo("\nnow:")
        _echo_tree(_require_session(store.load(session_id), session_id))
        _echo_stats(store, session_id)


def _require_session(data: SessionData | None, session_id: str) -> SessionData:
    if data is None:
        raise click.ClickException(f"no session {session_id!r}")
    return data


def _echo_tree(data: SessionData) -> None:
    for line in render_tree(data):
        click.echo(f"  {line}")


def _echo_stats(store: Store, session_id: str) -> None:
    info = next(
        item
        for item in store.list_sessions(prefix=session_id).items
        if item.session_id == session_id
    )
    click.echo(
        f"\nsession {session_id!r}: entries {info.entry_count} live, tombstones "
        f"{info.removed_count}, versions {info.version}, bytes {info.bytes} "
        "(● marks the leaf's branch)"
    )


@cli.command(name="ls")
@_url_option
@click.option("--prefix", default=None, help="Only session ids starting with this.")
@click.option("--limit", default=100, show_default=True)
@click.option("--cursor", default=None, help="Continue after a previous page.")
@_clean_errors
def list_command(url: str, prefix: str | None, limit: int, cursor: str | None) -> None:
    """List sessions."""
    with _opened(url) as store:
        page = store.list_sessions(prefix=prefix, limit=limit, cursor=cursor)
    for info in page.items:
        click.echo(
            f"{info.session_id}\tv{info.version}\t{info.entry_count} entries\t"
            f"{info.removed_count} removed\t{info.bytes} B\t{info.updated_at.isoformat()}"
        )
    if page.next_cursor:
        click.echo(f"next page: --cursor {page.next_cursor}", err=True)


@cli.command()
@_url_option
@click.argument("session_id")
@click.option("--tree", is_flag=True, help="Show the branch tree with the leaf marked.")
@_clean_errors
def show(url: str, session_id: str, tree: bool) -> None:
    """Show a session's entries (or its tree)."""
    with _opened(url) as store:
        data = _require_session(store.load(session_id), session_id)
        if tree:
            _echo_tree(data)
            _echo_stats(store, session_id)
            return
        for entry in data.entries:
            marker = "  ◀ leaf" if entry.id == data.leaf_id else ""
            click.echo(f"{entry.id}\t{entry.parent_id or '-'}\t{entry_label(entry)}{marker}")


@cli.command(
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": [],
    }
)
@click.pass_context
def bench(ctx: click.Context) -> None:
    """Run the benchmark harness (`python -m benchmarks`; pass --help for its options)."""
    # The harness lives in the repository, not the package: look in the working directory.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        harness = importlib.import_module("benchmarks.__main__")
    except ImportError:
        raise click.ClickException(
            "the benchmarks/ folder of a source checkout is needed: run this from the "
            "repository root"
        ) from None
    harness.main.main(args=ctx.args, prog_name="eventlog bench")


def main() -> None:
    """Entry point of the `eventlog` console script."""
    cli()
