"""The `eventlog` commands: a thin layer where every action is one library call."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Final

import click

from .._connect import DEFAULT_URL, connect
from .._core.codec import check_session_id
from ..demo import DEMO_SESSION_ID, run_demo
from ..errors import InvalidInputError
from ..formats import FORMATS, export_file, import_file
from ..formats.dump import MAX_PURGED_VERSIONS
from ..formats.folders import FolderResult, folder_files, import_folder
from ..formats.opencode import import_opencode
from ..keyring import Keyring
from ..model import Entry, SessionData, SessionInfo
from ..rekeying import rekey_all
from ..retention import DEFAULT_BATCH_SIZE, delete_idle_sessions, parse_duration
from ..stats import session_info, store_stats
from ..store import Store
from .error_lines import CommandLine, OneLineUsageError, clean_errors
from .progress import file_progress, progress_callback
from .tree import entry_label, printable, render_tree

__all__ = ["cli", "main"]

# Each part is a table per eventlog table; more than this is a typo, not a design.
_MAX_PARTITIONS: Final = 1024

_url_click_option = click.option(
    "--url",
    envvar="EVENTLOG_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Store URL (memory://, sqlite:///file.db, postgresql://...); or EVENTLOG_URL.",
)
# The tenant of the running command's store (`--tenant`), read by `_opened`.
_TENANT: ContextVar[str | None] = ContextVar("eventlog_cli_tenant", default=None)
# The keyring file of the running command's store (`--keyring`), read by `_opened`.
_KEYRING: ContextVar[str | None] = ContextVar("eventlog_cli_keyring", default=None)


def _url_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--url`, `--tenant` and `--keyring`: the store a command opens (`_opened`),
    whose sessions, and the keys that open sealed ones."""

    @functools.wraps(command)
    def run(*args: Any, tenant: str | None, keyring: str | None, **kwargs: Any) -> Any:
        token = _TENANT.set(tenant)
        keyring_token = _KEYRING.set(keyring)
        try:
            return command(*args, **kwargs)
        finally:
            _KEYRING.reset(keyring_token)
            _TENANT.reset(token)

    with_keyring = click.option(
        "--keyring",
        envvar="EVENTLOG_KEYRING",
        default=None,
        callback=_not_empty,
        metavar="FILE",
        help='A keyring file, {"active": ID, "keys": {ID: BASE64}}: new sessions are '
        "sealed and sealed ones open; or EVENTLOG_KEYRING.",
    )(run)

    with_tenant = click.option(
        "--tenant",
        envvar="EVENTLOG_TENANT",
        default=None,
        callback=_not_empty,
        help="The tenant whose sessions to use (default: the default tenant); or EVENTLOG_TENANT.",
    )(with_keyring)
    return _url_click_option(with_tenant)


# A query parameter or key=value setting that holds a secret: password, sslpassword.
_PASSWORD_SETTING = re.compile(r"(?i)((?:^|[?&\s])[a-z_]*password=)[^&#\s]*")


def shown_url(url: str) -> str:
    """The store URL for output: any password masked, control characters escaped.

    Works on malformed URLs too: everything between ``user:`` and the last ``@``
    is taken as the password, however it is spelt (an unencoded ``@`` or ``/``).
    """
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        if colon:
            rest = f"{user}:***@{host}"
    return printable(_PASSWORD_SETTING.sub(r"\1***", f"{scheme}{separator}{rest}"))


def _not_empty(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A click callback: refuse an option given empty (Path('') would mean the directory '.')."""
    if value == "":
        raise click.BadParameter("must not be empty")
    return value


def _quoted(text: str) -> str:
    """An id for a message line: quoted, its control characters escaped."""
    return f"'{printable(text)}'"


def _keyring() -> Keyring | None:
    """The keyring the running command was given (`--keyring`), or None."""
    keyring_file = _KEYRING.get()
    return None if keyring_file is None else Keyring.from_file(keyring_file)


@contextmanager
def _opened(url: str, **options: Any) -> Iterator[Store]:
    store = connect(url, tenant=_TENANT.get(), keyring=_keyring(), **options)
    try:
        yield store
    finally:
        store.close()


@click.group(cls=CommandLine)
@click.version_option(package_name="eventlog")
def cli() -> None:
    """Agent sessions stored as an append-only event log."""


@cli.command()
@_url_option
@click.option(
    "--partitions",
    type=click.IntRange(min=1, max=_MAX_PARTITIONS),
    default=None,
    help="PostgreSQL only: hash-partition a new schema's tables by session id into N parts.",
)
@click.option(
    "--app-role",
    "app_role",
    default=None,
    metavar="NAME",
    help="PostgreSQL only: then create (if absent) the least-privilege role NAME that "
    "applications connect as, and grant it only the rights eventlog's operations use.",
)
@click.option(
    "--distribute",
    is_flag=True,
    default=False,
    help="PostgreSQL with Citus only: then distribute the tables by session id, colocated "
    "(run on the coordinator).",
)
@clean_errors
def migrate(url: str, partitions: int | None, app_role: str | None, distribute: bool) -> None:
    """Create or upgrade the schema of the store at URL."""
    if distribute:
        if not url.lower().startswith(("postgresql:", "postgres:")):
            raise click.ClickException("--distribute applies to a PostgreSQL URL only")
        from ..postgres import distribute as distribute_tables

        tables = distribute_tables(url)
        done = f"distributed {', '.join(tables)}" if tables else "already distributed"
        click.echo(f"tables {done} by session_id: {shown_url(url)}")
        if app_role is None:
            return
    if app_role is not None:
        if not url.lower().startswith(("postgresql:", "postgres:")):
            raise click.ClickException("--app-role applies to a PostgreSQL URL only")
        from ..postgres import create_app_role

        made = create_app_role(url, app_role, partitions=partitions)
        done = f"applied {', '.join(map(str, made.applied))}" if made.applied else "up to date"
        how = "created" if made.created else "exists"
        click.echo(f"schema {done}: {shown_url(url)}")
        click.echo(
            f"app role {printable(made.name)} {how}, rights granted on schema "
            f"{printable(made.schema)}; set its password (ALTER ROLE ... PASSWORD) and connect "
            "as it"
        )
        if made.can_create_in_schema:
            click.echo(
                f"warning: PUBLIC may create objects in schema {printable(made.schema)}, so "
                f"the app role can too: REVOKE CREATE ON SCHEMA {printable(made.schema)} "
                "FROM PUBLIC",
                err=True,
            )
        return
    is_postgres = url.lower().startswith(("postgresql:", "postgres:"))
    if partitions is not None and not is_postgres:
        raise click.ClickException("--partitions applies to a PostgreSQL URL only")
    if is_postgres:
        # The migration itself, not a store opened on the migrated schema: only
        # it knows which versions it applied (a fresh database is not "up to date").
        from ..postgres import migrate as migrate_postgres

        applied = migrate_postgres(url, partitions=partitions)
        done = f"applied {', '.join(map(str, applied))}" if applied else "up to date"
        shown = f" ({partitions} partitions for a new schema)" if partitions is not None else ""
        click.echo(f"schema {done}{shown}: {shown_url(url)}")
        return
    with _opened(url, migrate=True):
        click.echo(f"schema up to date: {shown_url(url)}")


@cli.command()
@_url_option
@click.option("--session", "session_id", default=DEMO_SESSION_ID, show_default=True)
@clean_errors
def demo(url: str, session_id: str) -> None:
    """Write a realistic agent session turn by turn, then show its tree and stats."""
    with _opened(url) as store:
        run = run_demo(store, session_id)
    for index, result in enumerate(run.writes, 1):
        click.echo(
            f"write {index}: version {result.version}, appended {len(result.appended)}, "
            f"tombstoned {len(result.tombstoned)}"
        )
    click.echo(f"\nbefore the compaction (load at_version={run.before_compaction.version}):")
    _echo_tree(run.before_compaction)
    click.echo("\nnow:")
    _echo_tree(run.now)
    _echo_summary(run.info)


def _require_session(data: SessionData | None, session_id: str) -> SessionData:
    if data is None:
        raise click.ClickException(f"no session {_quoted(session_id)}")
    return data


def _echo_tree(data: SessionData) -> None:
    for line in render_tree(data):
        click.echo(f"  {line}")


def _echo_summary(info: SessionInfo) -> None:
    click.echo(
        f"\nsession {_quoted(info.session_id)}: entries {info.entry_count} live, tombstones "
        f"{info.removed_count}, versions {info.version}, bytes {info.bytes} "
        "(● marks the leaf's branch)"
    )


@cli.command(name="ls")
@_url_option
@click.option("--prefix", default=None, help="Only session ids starting with this.")
@click.option("--limit", default=100, show_default=True)
@click.option("--cursor", default=None, help="Continue after a previous page.")
@clean_errors
def list_command(url: str, prefix: str | None, limit: int, cursor: str | None) -> None:
    """List sessions."""
    if cursor == "":
        # base64 of nothing would decode to the start: the listing would silently restart.
        raise InvalidInputError("cursor is not one list_sessions returned", where="--cursor")
    with _opened(url) as store:
        page = store.list_sessions(prefix=prefix, limit=limit, cursor=cursor)
    for info in page.items:
        click.echo(
            f"{printable(info.session_id)}\tv{info.version}\t{info.entry_count} entries\t"
            f"{info.removed_count} removed\t{info.bytes} B\t{info.updated_at.isoformat()}"
        )
    if page.next_cursor:
        click.echo(f"next page: --cursor {page.next_cursor}", err=True)


@cli.command()
@_url_option
@click.argument("session_id")
@click.option("--tree", is_flag=True, help="Show the branch tree with the leaf marked.")
@clean_errors
def show(url: str, session_id: str, tree: bool) -> None:
    """Show a session's entries (or its tree)."""
    with _opened(url) as store:
        data = _require_session(store.load(session_id), session_id)
        if tree:
            _echo_tree(data)
            info = session_info(store, session_id)
            if info is None:  # deleted by another client since it was loaded
                raise click.ClickException(f"no session {_quoted(session_id)}")
            _echo_summary(info)
            return
        for entry in data.entries:
            click.echo(_entry_line(entry, data.leaf_id))


def _entry_line(entry: Entry, leaf_id: str | None) -> str:
    """One entry as `show` prints it: id, parent, label, and the leaf marked."""
    marker = "  ◀ leaf" if entry.id == leaf_id else ""
    parent = "-" if entry.parent_id is None else printable(entry.parent_id)
    return f"{printable(entry.id)}\t{parent}\t{entry_label(entry)}{marker}"


# The exit status of a tail ended by Ctrl-C: the shell's 128 + SIGINT, so a
# script can tell an interrupted tail from one whose session was deleted (0).
_INTERRUPTED: Final = 130


@cli.command()
@_url_option
@click.argument("session_id")
@click.option(
    "--from-version",
    type=click.IntRange(min=0),
    default=None,
    help="Print the entries written after this version (default: the current version).",
)
@clean_errors
def tail(url: str, session_id: str, from_version: int | None) -> None:
    """Print a session's entries as they are written, like `show`; Ctrl-C ends it.

    Each new version prints its appended and changed entries, and a line per
    removed id; it ends by itself when the session is deleted.
    """
    try:
        with _opened(url) as store:
            info = store.info(session_id)
            if info is None:
                raise click.ClickException(f"no session {_quoted(session_id)}")
            after = info.version if from_version is None else from_version
            changes = store.watch(session_id, after_version=after)
            click.echo(f"eventlog: tailing {_quoted(session_id)} after version {after}", err=True)
            try:
                for change in changes:
                    for entry in [*change.replaced, *change.appended]:
                        click.echo(_entry_line(entry, change.leaf_id))
                    for removed in change.removed_ids:
                        click.echo(f"{printable(removed)}\t-\t(removed)")
            finally:
                close = getattr(changes, "close", None)
                if close is not None:
                    close()
        click.echo(f"eventlog: session {_quoted(session_id)} was deleted", err=True)
    except KeyboardInterrupt:
        sys.exit(_INTERRUPTED)


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
    # The harness lives in the repository, not the package. A Python started with
    # -c finds it in the working directory by itself, and a process of its own
    # has its own argv (the harness records the command line it was given).
    if not (Path.cwd() / "benchmarks" / "__main__.py").is_file():
        raise click.ClickException(
            "the benchmarks/ folder of a source checkout is needed: run this from the "
            "repository root"
        )
    with subprocess.Popen([sys.executable, "-c", _RUN_HARNESS, *ctx.args]) as harness:
        try:
            code = harness.wait()
        except KeyboardInterrupt:
            # Ctrl-C reached the harness too: it stops and says so itself.
            code = harness.wait()
    ctx.exit(code)


# `python -m benchmarks`, with the usage and help saying `eventlog bench`.
_RUN_HARNESS: Final = "from benchmarks.__main__ import main; main(prog_name='eventlog bench')"


_format_option = click.option(
    "--format",
    "format_name",
    type=click.Choice(FORMATS),
    required=True,
    help="The file format (codex and opencode can be imported, not exported).",
)


@cli.command(name="import")
@_url_option
@_format_option
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--session", "session_id", default=None, help="Target session id (not for a folder).")
@click.option("--skip-bad", is_flag=True, help="Skip malformed lines and count them.")
@click.option(
    "--max-purged-versions",
    type=click.IntRange(min=0),
    default=MAX_PURGED_VERSIONS,
    show_default=True,
    help="jsonl: most purged versions a dump may ask to recreate (one write each).",
)
@clean_errors
def import_command(
    url: str,
    format_name: str,
    file: Path,
    session_id: str | None,
    skip_bad: bool,
    max_purged_versions: int,
) -> None:
    """Import a session FILE (streamed; a malformed line imports nothing unless --skip-bad).

    FILE may be a folder (claude-code: a project folder; pi: a sessions folder):
    every session in it is imported, each file all or nothing (or --skip-bad).
    opencode takes its storage/ folder, its opencode.db, or the folder holding them.
    """
    if format_name == "opencode" or file.is_dir():
        if session_id is not None:
            raise OneLineUsageError("--session does not apply to a folder or database")
        _import_folder(url, format_name, file, skip_bad=skip_bad)
        return
    if session_id is not None:
        # Checked here: the file's own id is used only when --session is not given at all.
        check_session_id(session_id, where="--session")
    with _opened(url) as store, progress_callback(f"importing {printable(file.name)}") as progress:
        result = import_file(
            store,
            format_name,
            file,
            session_id=session_id,
            skip_bad=skip_bad,
            max_purged_versions=max_purged_versions,
            progress=progress,
            keyring=_keyring() if format_name == "jsonl" else None,
        )
    click.echo(
        f"imported {result.entries} entries into session {_quoted(result.session_id)}: "
        f"{result.appended} new, {result.already_stored} already stored, "
        f"{result.tombstoned} tombstoned; version {result.version}"
    )
    if skip_bad:
        lines = ", ".join(map(str, result.bad_lines[:10]))
        more = ", ..." if len(result.bad_lines) > 10 else ""
        where = f" (lines {lines}{more})" if result.bad_lines else ""
        click.echo(f"skipped {result.skipped_bad} malformed lines{where}")


def _per_session(count: Callable[[int], None] | None) -> Callable[[str], None] | None:
    """A per-session callback that advances an entry-count bar by one session."""
    if count is None:
        return None
    return lambda _session: count(1)


def _import_folder(url: str, format_name: str, folder: Path, *, skip_bad: bool) -> None:
    """Import a folder: a bar over its files, each failure on a line, one summary line."""
    label = f"importing {printable(folder.name)}"
    result: FolderResult
    if format_name == "opencode":
        with _opened(url) as store, progress_callback(label) as count:
            result = import_opencode(store, folder, progress=_per_session(count))
    else:
        files = folder_files(format_name, folder)
        with _opened(url) as store, file_progress(len(files), label) as step:
            result = import_folder(
                store, format_name, folder, skip_bad=skip_bad, progress=step, files=files
            )
    for failure in result.failed:
        path = failure.path
        name = printable(
            os.fspath(path.relative_to(folder) if path.is_relative_to(folder) else path)
        )
        error = failure.error
        click.echo(printable(f"eventlog: {name}: {type(error).__name__}: {error}"), err=True)
    sessions = len(result.imported)
    skipped = f", {result.skipped_bad} malformed lines skipped" if skip_bad else ""
    click.echo(
        f"imported {sessions} of {sessions + len(result.failed)} "
        f"{'sessions' if format_name == 'opencode' else 'files'}: "
        f"{result.entries} entries, {result.appended} new{skipped}; {len(result.failed)} failed"
    )
    if result.failed:
        sys.exit(1)


@cli.command(name="export")
@_url_option
@_format_option
@click.argument("session_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    callback=_not_empty,
    help="Write here (atomically) instead of to stdout.",
)
@click.option(
    "--plaintext",
    is_flag=True,
    default=False,
    help="With --keyring: write the session decrypted (required but for a jsonl dump, "
    "which stays sealed without it: sealed payloads and metadata leave the store as "
    "plaintext only when asked).",
)
@clean_errors
def export_command(
    url: str, format_name: str, session_id: str, output: str | None, plaintext: bool
) -> None:
    """Export a session to a file, or to stdout (with --keyring, a jsonl dump stays sealed)."""
    keyring = _keyring()
    sealed = keyring is not None and format_name == "jsonl" and not plaintext
    if keyring is not None and not plaintext and not sealed:
        raise click.UsageError(
            "the store has a keyring: the export would hold the session in plaintext; "
            "pass --plaintext to write it decrypted (or --format jsonl: a sealed dump)"
        )
    with _opened(url) as store, tempfile.TemporaryDirectory(prefix="eventlog-") as folder:
        # export_file writes whole files only; stdout gets the file once it is complete.
        target = Path(output) if output is not None else Path(folder) / "export"
        with progress_callback(f"exporting {printable(session_id)}") as progress:
            export_file(
                store,
                format_name,
                session_id,
                target,
                progress=progress,
                keyring=keyring if sealed else None,
            )
        if output is None:
            with target.open("rb") as source:
                sys.stdout.flush()
                shutil.copyfileobj(source, sys.stdout.buffer)
                sys.stdout.buffer.flush()
    if sealed:
        decrypted = " sealed (a jsonl dump under the keyring)"
    else:
        decrypted = " in plaintext (decrypted)" if keyring is not None else ""
    if output is not None:
        click.echo(
            f"exported session {_quoted(session_id)}{decrypted} to {printable(output)}", err=True
        )
    elif decrypted:
        click.echo(f"exported session {_quoted(session_id)}{decrypted}", err=True)


@cli.command()
@_url_option
@click.option("--prefix", default=None, help="Only session ids starting with this.")
@click.option("--top", default=5, show_default=True, type=click.IntRange(min=0))
@clean_errors
def stats(url: str, prefix: str | None, top: int) -> None:
    """Totals over every session, and the largest sessions by bytes."""
    with _opened(url) as store:
        totals = store_stats(store, prefix=prefix, top=top)
    click.echo(f"sessions    {totals.sessions}")
    click.echo(f"entries     {totals.entries} live")
    click.echo(f"tombstones  {totals.tombstones}")
    click.echo(f"bytes       {totals.bytes}")
    if totals.largest:
        click.echo("largest sessions:")
        for info in totals.largest:
            click.echo(
                f"  {printable(info.session_id)}\t{info.bytes} B\t{info.entry_count} entries\t"
                f"{info.removed_count} removed"
            )


@cli.command()
@_url_option
@click.argument("session_id", required=False)
@click.option(
    "--older-than",
    default=None,
    help="Delete whole sessions not updated for this long, e.g. 30d, 12h, 2w.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=DEFAULT_BATCH_SIZE,
    show_default=True,
    hidden=True,
)
@clean_errors
def purge(url: str, session_id: str | None, older_than: str | None, batch_size: int) -> None:
    """Drop SESSION's tombstoned records, or delete sessions idle for --older-than."""
    if (session_id is None) == (older_than is None):
        raise click.UsageError("give either SESSION or --older-than")
    if older_than is not None:
        age = parse_duration(older_than)
        with _opened(url) as store:
            deleted = delete_idle_sessions(store, age, batch_size=batch_size)
        click.echo(f"deleted {deleted} sessions not updated for {printable(older_than)}")
        return
    assert session_id is not None
    with _opened(url) as store:
        dropped = store.purge(session_id)
    click.echo(f"purged {dropped} records from session {_quoted(session_id)}")


@cli.command()
@_url_option
@click.argument("source_id")
@click.argument("new_id")
@click.option("--at", "at_entry_id", default=None, help="Copy only the branch up to this entry.")
@clean_errors
def fork(url: str, source_id: str, new_id: str, at_entry_id: str | None) -> None:
    """Copy session SOURCE into a new session NEW (optionally only up to an entry)."""
    with _opened(url) as store:
        info = store.fork(source_id, new_id, at_entry_id=at_entry_id)
    where = f" at {_quoted(at_entry_id)}" if at_entry_id is not None else ""
    click.echo(
        f"forked {_quoted(source_id)}{where} into {_quoted(new_id)}: {info.entry_count} entries"
    )


@cli.command()
@_url_option
@click.option(
    "--seal",
    is_flag=True,
    default=False,
    help="Also seal every plain session: each is written again as its live entries, "
    "sealed; its history before is dropped, as by purge.",
)
@clean_errors
def rekey(url: str, seal: bool) -> None:
    """Rewrap every sealed session's data key under the keyring's active key.

    Afterwards the keyring's other keys are no longer needed to read anything.
    """
    if _KEYRING.get() is None:
        raise click.UsageError("rekey needs --keyring FILE (or EVENTLOG_KEYRING)")
    with _opened(url) as store:
        report = rekey_all(store, seal=seal)
    click.echo(
        f"rekeyed {report.rewrapped} sessions; {report.current} already under the active key; "
        f"{report.sealed} sealed; {report.plain} plain (not sealed)"
    )


def main() -> None:
    """Entry point of the `eventlog` console script."""
    cli()
