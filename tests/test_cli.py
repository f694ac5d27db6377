"""The command line: demo, ls and show on a real SQLite file."""

from __future__ import annotations

import os
import pty
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.cli import cli
from eventlog.formats import read_session


def test_demo_writes_the_session_and_prints_tree_and_stats(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = CliRunner().invoke(cli, ["demo", "--url", url])
    assert result.exit_code == 0, result.output
    assert "◀ leaf" in result.output
    assert "[compaction]" in result.output
    assert "├─" in result.output  # the edited question branches the tree
    with eventlog.connect(url) as store:
        data = store.load("demo")
        assert data is not None
        info = store.list_sessions(prefix="demo").items[0]
    assert f"entries {info.entry_count} live, tombstones {info.removed_count}" in result.output
    assert info.removed_count > 0 and data.leaf_id == "a6"
    assert [entry.id for entry in data.entries] == ["u3", "a5", "c1", "u4", "a6"]


def test_demo_runs_again_on_the_same_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    for _ in range(2):
        assert CliRunner().invoke(cli, ["demo", "--url", url]).exit_code == 0
    with eventlog.connect(url) as store:
        assert store.list_sessions().items[0].version == 6


def test_default_url_is_the_embedded_file_in_the_working_directory(tmp_path: Path) -> None:
    done = _python_m_eventlog_run(["demo"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "eventlog.db").exists()


@pytest.mark.parametrize("args", [["show", "nope"], ["ls", "--url", "mysql://x"]])
def test_errors_are_one_line_without_traceback(tmp_path: Path, args: list[str]) -> None:
    url_args = [] if "--url" in args else ["--url", f"sqlite:///{tmp_path / 'e.db'}"]
    result = CliRunner().invoke(cli, [*args, *url_args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_show_tree_and_ls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    runner = CliRunner()
    runner.invoke(cli, ["demo", "--url", url])
    listing = runner.invoke(cli, ["ls", "--url", url])
    assert listing.exit_code == 0 and listing.output.startswith("demo\tv6\t5 entries")
    shown = runner.invoke(cli, ["show", "demo", "--tree", "--url", url])
    assert shown.exit_code == 0 and "(parent a4 not live)" in shown.output


# --- import, export, stats, purge, fork, migrate --partitions --------------------------------

FIXTURES = Path(__file__).parent / "formats" / "fixtures"
PI_FILE = FIXTURES / "pi_v3.jsonl"
PI_SESSION = "0198f0c2-6a1e-7c3b-9d2e-5f4a3b2c1d0e"  # the id in the fixture's header line


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def _run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _entry(entry_id: str, parent_id: str | None = None, text: str = "x") -> Entry:
    return Entry(entry_id, parent_id, "message", None, {"text": text})


def _write(url: str, session_id: str, *entries: Entry, removed: tuple[str, ...] = ()) -> None:
    with eventlog.connect(url) as store:
        store.save_delta(
            session_id,
            SessionDelta(
                new_entries=list(entries),
                removed_entry_ids=list(removed),
                leaf_id=entries[-1].id if entries else None,
            ),
        )


@pytest.mark.parametrize(
    ("format_name", "fixture"),
    [
        ("pi", "pi_v3.jsonl"),
        ("claude-code", "claude_code.jsonl"),
        ("codex", "codex_rollout.jsonl"),
        ("flue", "flue_v8.json"),
    ],
)
def test_import_stores_what_the_library_reads(
    tmp_path: Path, format_name: str, fixture: str
) -> None:
    url = _url(tmp_path)
    result = _run(
        "import", "--format", format_name, str(FIXTURES / fixture), "--session", "s1", "--url", url
    )
    assert result.exit_code == 0, result.output
    with (FIXTURES / fixture).open("rb") as stream:
        expected = read_session(format_name, stream, session_id="s1")
    with eventlog.connect(url) as store:
        stored = store.load("s1")
    assert stored == expected
    assert f"imported {len(expected.entries)} entries into session 's1'" in result.stdout
    assert f"{len(expected.entries)} new" in result.stdout


def test_import_takes_the_session_id_from_the_file_and_is_idempotent(tmp_path: Path) -> None:
    url = _url(tmp_path)
    first = _run("import", "--format", "pi", str(PI_FILE), "--url", url)
    again = _run("import", "--format", "pi", str(PI_FILE), "--url", url)
    assert first.exit_code == 0 and again.exit_code == 0, again.output
    assert f"into session {PI_SESSION!r}: 12 new, 0 already stored" in first.stdout
    assert "0 new, 12 already stored" in again.stdout
    with eventlog.connect(url) as store:
        assert [info.session_id for info in store.list_sessions().items] == [PI_SESSION]


def _with_bad_line(tmp_path: Path) -> Path:
    lines = PI_FILE.read_bytes().splitlines(keepends=True)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join([*lines[:3], b"{not json\n", *lines[3:]]))
    return bad


def test_malformed_line_imports_nothing_and_names_file_and_line(tmp_path: Path) -> None:
    url = _url(tmp_path)
    bad = _with_bad_line(tmp_path)
    result = _run("import", "--format", "pi", str(bad), "--url", url)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1
    assert "MalformedLineError" in result.stderr and f"{bad}:4" in result.stderr
    with eventlog.connect(url) as store:
        assert store.list_sessions().items == []


def test_skip_bad_imports_the_rest_and_says_how_many_were_skipped(tmp_path: Path) -> None:
    url = _url(tmp_path)
    result = _run(
        "import", "--format", "pi", str(_with_bad_line(tmp_path)), "--skip-bad", "--url", url
    )
    assert result.exit_code == 0, result.output
    assert "skipped 1 malformed lines (lines 4)" in result.stdout
    with eventlog.connect(url) as store:
        data = store.load(PI_SESSION)
    assert data is not None and len(data.entries) == 12


def test_skip_bad_with_a_clean_file_reports_zero(tmp_path: Path) -> None:
    result = _run("import", "--format", "pi", str(PI_FILE), "--skip-bad", "--url", _url(tmp_path))
    assert result.exit_code == 0, result.output
    assert "skipped 0 malformed lines\n" in result.stdout


def test_export_to_stdout_and_to_a_file_round_trips_the_pi_file(tmp_path: Path) -> None:
    url = _url(tmp_path)
    assert _run("import", "--format", "pi", str(PI_FILE), "--url", url).exit_code == 0
    piped = _run("export", "--format", "pi", PI_SESSION, "--url", url)
    assert piped.exit_code == 0, piped.output
    assert piped.stdout_bytes == PI_FILE.read_bytes()
    assert piped.stderr == ""
    target = tmp_path / "out.jsonl"
    written = _run("export", "--format", "pi", PI_SESSION, "-o", str(target), "--url", url)
    assert written.exit_code == 0, written.output
    assert target.read_bytes() == PI_FILE.read_bytes()
    assert written.stdout == ""


def test_jsonl_export_and_import_restore_history_and_tombstones(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _write(url, "orig", _entry("a"), _entry("b", "a"))
    _write(url, "orig", _entry("c", "a"), removed=("b",))
    dump = tmp_path / "orig.jsonl"
    assert _run("export", "--format", "jsonl", "orig", "-o", str(dump), "--url", url).exit_code == 0
    other = f"sqlite:///{tmp_path / 'other.db'}"
    restored = _run("import", "--format", "jsonl", str(dump), "--url", other)
    assert restored.exit_code == 0, restored.output
    with eventlog.connect(url) as source, eventlog.connect(other) as target:
        for version in (1, 2):
            assert target.load("orig", at_version=version) == source.load(
                "orig", at_version=version
            )
        assert target.list_sessions().items[0].removed_count == 1


def test_failed_export_writes_no_file_and_prints_one_line(tmp_path: Path) -> None:
    url = _url(tmp_path)
    target = tmp_path / "missing.jsonl"
    result = _run("export", "--format", "pi", "nope", "-o", str(target), "--url", url)
    assert result.exit_code == 1
    assert (
        result.stderr.startswith("eventlog: SessionNotFoundError")
        and result.stderr.count("\n") == 1
    )
    assert not target.exists()
    assert not any(path.name.startswith(".missing") for path in tmp_path.iterdir())


def test_codex_cannot_be_exported(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _write(url, "s", _entry("a"))
    result = _run("export", "--format", "codex", "s", "--url", url)
    assert result.exit_code == 1 and result.stdout == ""
    assert "can be imported, not exported" in result.stderr


def test_stats_totals_and_largest_sessions(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _write(url, "small", _entry("a", text="x"))
    _write(url, "big", _entry("a", text="x" * 500), _entry("b", "a", text="y" * 500))
    _write(url, "mid", _entry("a", text="z" * 100), _entry("b", "a"))
    _write(url, "mid", _entry("c", "a"), removed=("b",))
    result = _run("stats", "--url", url, "--top", "2")
    assert result.exit_code == 0, result.output
    with eventlog.connect(url) as store:
        infos = {info.session_id: info for info in store.list_sessions().items}
    total = sum(info.bytes for info in infos.values())
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "sessions    3",
        "entries     5 live",
        "tombstones  1",
        f"bytes       {total}",
    ]
    assert lines[4] == "largest sessions:"
    assert [line.split("\t")[0].strip() for line in lines[5:]] == ["big", "mid"]
    assert lines[5] == f"  big\t{infos['big'].bytes} B\t2 entries\t0 removed"


def test_stats_pages_through_more_sessions_than_one_page(tmp_path: Path) -> None:
    url = _url(tmp_path)
    with eventlog.connect(url) as store:
        for number in range(1005):
            store.save_delta(f"s{number:04d}", SessionDelta(new_entries=[_entry("a")]))
    result = _run("stats", "--url", url)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("sessions    1005\nentries     1005 live\n")


def test_purge_drops_one_sessions_tombstones(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _write(url, "s", _entry("a"), _entry("b", "a"))
    _write(url, "s", _entry("c", "a"), removed=("b",))
    _write(url, "other", _entry("a"), _entry("b", "a"))
    _write(url, "other", removed=("b",))
    result = _run("purge", "s", "--url", url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "purged 1 records from session 's'\n"
    with eventlog.connect(url) as store:
        infos = {info.session_id: info for info in store.list_sessions().items}
        assert infos["s"].removed_count == 0 and infos["other"].removed_count == 1
        with pytest.raises(eventlog.HistoryPurgedError):
            store.load("s", at_version=1)


def _age(db: Path, session_id: str, days: int) -> None:
    """Move a session's last write back in time (the store keeps UTC microseconds)."""
    with sqlite3.connect(db) as conn:
        updated = conn.execute(
            "SELECT updated_at FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        conn.execute(
            "UPDATE sessions SET updated_at = ? WHERE session_id = ?",
            (updated - days * 86_400 * 1_000_000, session_id),
        )


def test_purge_older_than_deletes_idle_sessions_only(tmp_path: Path) -> None:
    url = _url(tmp_path)
    for sid in ("old1", "old2", "old3", "recent", "week"):
        _write(url, sid, _entry("a"))
    for sid in ("old1", "old2", "old3"):
        _age(tmp_path / "cli.db", sid, 40)
    _age(tmp_path / "cli.db", "week", 7)
    result = _run("purge", "--older-than", "30d", "--batch-size", "2", "--url", url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "deleted 3 sessions not updated for 30d\n"
    with eventlog.connect(url) as store:
        assert [info.session_id for info in store.list_sessions().items] == ["recent", "week"]
        assert store.load("old1") is None


@pytest.mark.parametrize(
    "args",
    [["purge"], ["purge", "s", "--older-than", "1d"], ["purge", "--older-than", "30 days"]],
)
def test_purge_needs_exactly_one_target_and_a_valid_age(tmp_path: Path, args: list[str]) -> None:
    url = _url(tmp_path)
    _write(url, "s", _entry("a"))
    result = _run(*args, "--url", url)
    assert result.exit_code != 0 and "Traceback" not in result.output
    with eventlog.connect(url) as store:
        assert store.load("s") is not None


@pytest.mark.parametrize(
    ("args", "exit_code", "said"),
    [
        (["--older-than", "99999999999999999999d"], 1, "eventlog: InvalidInputError: duration"),
        (["--older-than", "1000000w"], 0, "deleted 0 sessions not updated for 1000000w"),
        (["--older-than", "1d", "--batch-size", "99999999999999999999"], 0, "deleted 0 sessions"),
    ],
)
def test_purge_with_a_huge_age_or_batch_is_one_line_and_keeps_every_session(
    tmp_path: Path, args: list[str], exit_code: int, said: str
) -> None:
    url = _url(tmp_path)
    _write(url, "s", _entry("a"))
    result = _run("purge", *args, "--url", url)
    assert result.exit_code == exit_code, result.output
    assert result.output.startswith(said) and result.output.count("\n") == 1
    with eventlog.connect(url) as store:
        assert store.load("s") is not None


def test_fork_at_an_entry(tmp_path: Path) -> None:
    url = _url(tmp_path)
    _write(url, "src", _entry("a"), _entry("b", "a"), _entry("c", "b"))
    result = _run("fork", "src", "copy", "--at", "b", "--url", url)
    assert result.exit_code == 0, result.output
    assert result.stdout == "forked 'src' at 'b' into 'copy': 2 entries\n"
    whole = _run("fork", "src", "whole", "--url", url)
    assert whole.stdout == "forked 'src' into 'whole': 3 entries\n"
    with eventlog.connect(url) as store:
        copy = store.load("copy")
        assert copy is not None and copy.leaf_id == "b"
        assert [entry.id for entry in copy.entries] == ["a", "b"]
        assert copy.parent_session_id == "src"
    again = _run("fork", "src", "copy", "--url", url)
    assert again.exit_code == 1 and again.stderr.startswith("eventlog: SessionExistsError")


def test_migrate_partitions_is_refused_on_sqlite(tmp_path: Path) -> None:
    result = _run("migrate", "--partitions", "4", "--url", _url(tmp_path))
    assert result.exit_code == 1
    assert "PostgreSQL" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "cli.db").exists()


@pytest.mark.postgres
def test_migrate_on_a_fresh_postgres_says_what_it_applied() -> None:
    import pgserver

    from eventlog._sql.migrations import migrations

    dsn = pgserver.dsn_or_skip()
    url = pgserver.with_search_path(dsn, pgserver.make_schema("cli_fresh", empty=True))
    first = _run("migrate", "--url", url)
    assert first.exit_code == 0, first.output
    applied = ", ".join(str(step.version) for step in migrations("postgres"))
    assert f"schema applied {applied}:" in first.stdout
    again = _run("migrate", "--url", url)
    assert again.exit_code == 0, again.output
    assert "schema up to date:" in again.stdout


@pytest.mark.postgres
def test_migrate_distribute_on_citus() -> None:
    import pgserver
    import psycopg

    dsn = pgserver.citus_or_skip()
    schema = pgserver.make_schema("cli_distribute", empty=True)
    url = pgserver.with_search_path(dsn, schema)
    first = _run("migrate", "--distribute", "--url", url)
    assert first.exit_code == 0, first.output
    assert "distributed sessions, entries, session_versions" in first.stdout
    again = _run("migrate", "--distribute", "--url", url)
    assert "already distributed" in again.stdout
    with psycopg.connect(dsn) as conn:
        groups = conn.execute(
            "SELECT count(DISTINCT colocationid) FROM pg_dist_partition "
            "WHERE logicalrelid::text LIKE %s",
            (f"{schema}.%",),
        ).fetchone()
    assert groups == (1,)


@pytest.mark.postgres
def test_migrate_partitions_on_postgres(tmp_path: Path) -> None:
    import pgserver
    import psycopg

    dsn = pgserver.dsn_or_skip()
    schema = pgserver.make_schema("cli_partitions", empty=True)
    result = _run("migrate", "--partitions", "3", "--url", pgserver.with_search_path(dsn, schema))
    assert result.exit_code == 0, result.output
    assert "applied 1" in result.stdout
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT c.relname, (SELECT count(*) FROM pg_inherits WHERE inhparent = c.oid) "
            "FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s",
            (schema,),
        ).fetchall()
    assert rows and all(count == 3 for _, count in rows)


def _python_m_eventlog(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "eventlog", *args], cwd=cwd, **kwargs)


def _python_m_eventlog_run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m eventlog ARGS` run to its end, its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "eventlog", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_m_eventlog_import_piped_is_quiet(tmp_path: Path) -> None:
    fixture = FIXTURES / "claude_code.jsonl"
    done = _python_m_eventlog_run(
        ["import", "--format", "claude-code", str(fixture), "--session", "cc"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.startswith("imported ") and "into session 'cc'" in done.stdout
    with eventlog.connect(f"sqlite:///{tmp_path / 'eventlog.db'}") as store:
        data = store.load("cc")
    with (FIXTURES / "claude_code.jsonl").open("rb") as stream:
        assert data == read_session("claude-code", stream, session_id="cc")


def _on_a_terminal(args: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], bytes, bytes]:
    """Run `python -m eventlog` with stderr on a pseudo-terminal: (process, stderr, stdout)."""
    controller, terminal = pty.openpty()
    try:
        process = _python_m_eventlog(args, cwd, stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        stdout, _ = process.communicate(timeout=60)
    finally:
        os.close(controller)
    return process, shown, stdout


def test_progress_bar_shows_on_a_terminal(tmp_path: Path) -> None:
    process, shown, stdout = _on_a_terminal(["import", "--format", "pi", str(PI_FILE)], tmp_path)
    assert process.returncode == 0
    assert b"importing pi_v3.jsonl" in shown
    # The total is unknown, so the bar counts entries without a "/total".
    assert b"  12" in shown and b"12/" not in shown
    assert stdout.startswith(b"imported 12 entries")


def test_folder_import_shows_a_bar_over_files_on_a_terminal(tmp_path: Path) -> None:
    folder = FIXTURES / "claude_project"
    files = len(list(folder.rglob("*.jsonl")))
    process, shown, stdout = _on_a_terminal(
        ["import", "--format", "claude-code", str(folder)], tmp_path
    )
    assert process.returncode == 0
    assert b"importing claude_project" in shown
    assert f"0/{files}".encode() in shown and f"{files}/{files}".encode() in shown
    (summary,) = stdout.splitlines()
    assert summary.startswith(f"imported {files} of {files} files: ".encode())


def test_progress_label_escapes_the_file_name(tmp_path: Path) -> None:
    hostile = tmp_path / "x\x1b]0;pwned\x07.jsonl"
    hostile.write_bytes(PI_FILE.read_bytes())
    process, shown, _ = _on_a_terminal(["import", "--format", "pi", str(hostile)], tmp_path)
    assert process.returncode == 0
    assert b"importing x\\x1b]0;pwned\\x07.jsonl" in shown
    assert b"\x1b]0;" not in shown and b"\x07" not in shown


# --- stored text is printed with its control characters escaped ----------------------------

HOSTILE_SESSION = "s1\x1b[31mRED\u202e"
# What a terminal would act on: C0 (but the tabs and newlines the CLI itself prints), DEL, C1,
# bidi embeddings, overrides and isolates.
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _hostile_session(url: str) -> None:
    with eventlog.connect(url) as store:
        store.save_delta(
            HOSTILE_SESSION,
            SessionDelta(
                [
                    Entry(
                        "u1",
                        None,
                        "message",
                        None,
                        {
                            "message": {
                                "role": "user\x9b2J",
                                "content": "hi \x1b]0;pwned\x07\x1b[2J",
                            }
                        },
                    ),
                    Entry("id\x1b[1A\x1b[2K", "u1", "kind\x1b[5m", None, {"text": "x\u2066y"}),
                    Entry("c\x1b", "gone\x1b[H", "message", None, {"summary": "\x1b[?1049h"}),
                ],
                leaf_id="id\x1b[1A\x1b[2K",
            ),
        )


@pytest.mark.parametrize(
    "args",
    [
        ["ls"],
        ["show", HOSTILE_SESSION],
        ["show", HOSTILE_SESSION, "--tree"],
        ["stats"],
        ["export", "--format", "pi", HOSTILE_SESSION, "-o", "OUT"],
        ["fork", HOSTILE_SESSION, "copy\x1b[2J"],
        ["fork", HOSTILE_SESSION, "copy", "--at", "id\x1b[1A\x1b[2K"],
        ["purge", HOSTILE_SESSION],
        ["show", "missing\x1b[2J"],
        ["purge", "--older-than", "1\x1b[2Jd"],
        ["import", "--format", "pi", str(PI_FILE), "--session", "in\x1b]0;x\x07"],
    ],
)
def test_control_characters_from_stored_data_are_printed_escaped(
    tmp_path: Path, args: list[str]
) -> None:
    url = _url(tmp_path)
    _hostile_session(url)
    args = [str(tmp_path / "out.jsonl") if arg == "OUT" else arg for arg in args]
    # color=True: as on a terminal, where click strips nothing.
    result = CliRunner().invoke(cli, [*args, "--url", url], color=True)
    assert "Traceback" not in result.output
    assert not _TERMINAL_CONTROLS.search(result.output), result.output
    assert "\\x1b" in result.output or "\\u202e" in result.output, result.output


# --- no command prints a password ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:S3cretPass@db.example:5432/x", "postgresql://app:***@db.example:5432/x"),
        ("postgresql://app:S3cret%zzPass@127.0.0.1/x", "postgresql://app:***@127.0.0.1/x"),
        ("postgresql://app:S3cretPass@[::1/x", "postgresql://app:***@[::1/x"),
        ("postgresql://app:S3c@ret/Pass@host/x", "postgresql://app:***@host/x"),
        (
            "postgres://host/x?user=a&password=S3cretPass&sslmode=off",
            "postgres://host/x?user=a&password=***&sslmode=off",
        ),
        ("postgresql://host/x?sslpassword=S3cretPass", "postgresql://host/x?sslpassword=***"),
        ("host=db password=S3cretPass dbname=x", "host=db password=*** dbname=x"),
        ("postgresql://app@host/x", "postgresql://app@host/x"),
        ("sqlite:///some/file.db", "sqlite:///some/file.db"),
    ],
)
def test_a_shown_url_has_its_password_masked(url: str, shown: str) -> None:
    from eventlog.cli.commands import shown_url

    assert shown_url(url) == shown


def _with_password(dsn: str, password: str) -> str:
    scheme, rest = dsn.split("://", 1)
    userinfo, host = rest.split("@", 1) if "@" in rest else ("postgres", rest)
    return f"{scheme}://{userinfo.split(':')[0]}:{password}@{host}"


@pytest.mark.postgres
@pytest.mark.parametrize("partitions", [[], ["--partitions", "2"]])
def test_migrate_never_prints_the_password(partitions: list[str]) -> None:
    import pgserver

    dsn = pgserver.dsn_or_skip()
    if "@" in dsn and ":" in dsn.split("://", 1)[1].split("@", 1)[0]:
        pytest.skip("the test server's URL has a password of its own")
    schema = pgserver.make_schema("cli_password" + "".join(partitions).replace("-", ""))
    url = pgserver.with_search_path(_with_password(dsn, "S3cretPass"), schema)
    result = _run("migrate", *partitions, "--url", url)
    assert "S3cretPass" not in result.output, result.output
    # The server of the tests trusts local connections; one that checks passwords refuses.
    assert result.exit_code == 0 or "S3cret" not in result.output
    if result.exit_code == 0:
        assert ":***@" in result.output


# --- empty values and usage errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["import", "--format", "pi", "PI", "--session", ""], "InvalidIdError"),
        (["demo", "--session", ""], "InvalidIdError"),
        (["show", ""], "InvalidIdError"),
        (["fork", "s", "copy", "--at", ""], "InvalidIdError"),
        (["ls", "--cursor", ""], "InvalidInputError"),
        (["export", "--format", "pi", "s", "-o", ""], "--output"),
        (["purge", "--older-than", ""], "InvalidInputError"),
    ],
)
def test_an_empty_id_cursor_or_path_is_refused_not_ignored(
    tmp_path: Path, args: list[str], error: str
) -> None:
    url = _url(tmp_path)
    _write(url, "s", _entry("a"))
    args = [str(PI_FILE) if arg == "PI" else arg for arg in args]
    result = _run(*args, "--url", url)
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.startswith("eventlog: ") and result.stderr.count("\n") == 1
    assert error in result.stderr
    with eventlog.connect(url) as store:
        assert [info.session_id for info in store.list_sessions().items] == ["s"]
        assert store.load("s") is not None and store.load("s").version == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["nope"], "No such command 'nope'"),
        (["--bogus"], "No such option"),
        (["show"], "Missing argument 'SESSION_ID'"),
        (["ls", "--limit", "abc"], "'abc' is not a valid integer"),
        (["migrate", "--partitions", "0"], "--partitions"),
        (["migrate", "--partitions", "99999999999999999999"], "--partitions"),
        (["purge", "--older-than", "1d", "--batch-size", "0"], "--batch-size"),
        (["purge"], "give either SESSION or --older-than"),
        (["show", "missing"], "no session 'missing'"),
    ],
)
def test_usage_errors_are_one_line(tmp_path: Path, args: list[str], said: str) -> None:
    result = _run(*args, "--url", _url(tmp_path)) if args != ["--bogus"] else _run(*args)
    assert result.exit_code in (1, 2)
    assert result.stdout == ""
    assert result.stderr.startswith("eventlog: ") and result.stderr.count("\n") == 1
    assert said in result.stderr


def test_no_arguments_still_shows_the_help() -> None:
    result = _run()
    assert "Usage: " in result.output and "Commands:" in result.output


def test_bench_runs_the_harness_of_the_checkout_it_is_started_in(tmp_path: Path) -> None:
    checkout = Path(__file__).resolve().parents[1]
    harness = _python_m_eventlog(
        ["bench", "--no-sqlite"], checkout, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, said = harness.communicate(timeout=60)
    assert harness.returncode == 2  # the harness's own usage error, under the CLI's name
    assert b"Usage: eventlog bench" in said and b"nothing to run" in said
    elsewhere = _python_m_eventlog(["bench"], tmp_path, stderr=subprocess.PIPE)
    _, said = elsewhere.communicate(timeout=60)
    assert elsewhere.returncode == 1
    assert said.startswith(b"eventlog: the benchmarks/ folder of a source checkout is needed")
