"""Every command, fed the hostile values of the red-team list, ends cleanly.

Each case exits 0 where the input is usable, else non-zero with exactly one
``eventlog: ...`` line on stderr; never a Python traceback, never a password.
The argv cases run the real ``python -m eventlog``, so Python's own decoding of
non-UTF-8 arguments (surrogateescape) is what the commands receive.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

import pytest
from click.testing import CliRunner

import eventlog
from eventlog.cli import cli
from eventlog.demo import write_demo_session

SECRET = "S3cretPass"
Expect = Literal["ok", "error", "either"]


def _case_id(args: list[str | bytes]) -> str:
    shown = " ".join(os.fsdecode(arg) if isinstance(arg, bytes) else arg for arg in args)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _cases(cases: list[tuple[list[str | bytes], Expect]]) -> list[object]:
    return [pytest.param(args, expect, id=_case_id(args)) for args, expect in cases]


def _assert_clean(code: int, stdout: str, stderr: str, expect: Expect) -> None:
    everything = stdout + stderr
    assert "Traceback" not in everything, everything
    assert SECRET[:5] not in everything, everything  # whole, or cut by a %zz
    if expect == "ok" or (expect == "either" and code == 0):
        assert code == 0, everything
        return
    assert code != 0, everything
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("eventlog: "), everything


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with eventlog.connect(url) as store:
        write_demo_session(store)
    return url


def _files(folder: Path) -> dict[str, Path]:
    """Hostile input files, by name."""
    deep = "[" * 5000 + "]" * 5000
    contents = {
        "pi-deep": '{"type":"session","id":"p"}\n{"type":"m","id":"a","x":' + deep + "}\n",
        "pi-deep-header": '{"type":"session","id":"p","x":' + deep + "}\n",
        "pi-1e400-header": '{"type":"session","id":"h","x":1e400}\n{"type":"m","id":"a"}\n',
        "cc-deep": '{"type":"user","uuid":"u","x":' + deep + "}\n",
        "codex-deep": '{"type":"session_meta","payload":{"id":"c","x":' + deep + "}}\n",
        "jsonl-deep": '{"eventlog_dump":1,"session_id":"d","x":' + deep + "}\n",
        "flue-deep": '{"version":3,"entries":[{"type":"m","id":"a","x":' + deep + "}]}",
        "flue-surrogate-id": '{"version":3,"entries":[{"type":"m","id":"\\ud800"}]}',
        "flue-surrogate-leaf": '{"version":3,"entries":[{"type":"m","id":"a"}],"leafId":"\\udfff"}',
        "dump-first-version": (
            '{"eventlog_dump":1,"session_id":"dh","version":100000000,"first_version":100000000}\n'
        ),
        "pi-ok": '{"type":"session","id":"x"}\n{"type":"message","id":"a","parentId":null}\n',
    }
    paths = {}
    for name, text in contents.items():
        paths[name] = folder / f"{name}.in"
        paths[name].write_text(text)
    return paths


# --- argv that is not UTF-8, through the real interpreter --------------------------------------

FF = b"\xff"
ARGV_CASES: list[tuple[list[str | bytes], Expect]] = [
    (["ls", "--prefix", FF], "either"),
    (["stats", "--prefix", FF], "either"),
    (["ls", "--cursor", FF], "error"),
    (["show", FF], "error"),
    (["show", FF, "--tree"], "error"),
    (["export", "--format", "pi", FF], "error"),
    (["export", "--format", "jsonl", FF], "error"),
    (["export", "--format", "pi", "demo", "-o", b"out-\xff.jsonl"], "ok"),
    (["import", "--format", "pi", "PI-OK", "--session", FF], "error"),
    (["import", "--format", "pi", b"in-\xff.jsonl"], "ok"),
    (["import", "--format", "claude-code", b"in-\xff.jsonl"], "error"),  # the id is the stem
    (["purge", FF], "error"),
    (["purge", "--older-than", FF], "error"),
    (["fork", FF, "copy"], "error"),
    (["fork", "demo", FF], "error"),
    (["fork", "demo", "copy", "--at", FF], "error"),
    (["demo", "--session", FF], "error"),
    (["ls", "--url", b"sqlite:///\xff.db"], "either"),
    (["migrate", "--url", b"postgresql://app:" + SECRET.encode() + b"@\xff/x"], "error"),
]


@pytest.mark.parametrize(("args", "expect"), _cases(ARGV_CASES))
def test_argv_that_is_not_utf8(
    tmp_path: Path, url: str, args: list[str | bytes], expect: Expect
) -> None:
    ok_file = _files(tmp_path)["pi-ok"]
    (tmp_path / os.fsdecode(b"in-\xff.jsonl")).write_bytes(ok_file.read_bytes())
    argv = [os.fsencode(str(ok_file)) if arg == "PI-OK" else arg for arg in args]
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", *argv],
        cwd=tmp_path,
        env={**os.environ, "EVENTLOG_URL": url},
        capture_output=True,
        timeout=60,
        check=False,
    )
    stdout = done.stdout.decode("utf-8", "replace")
    stderr = done.stderr.decode("utf-8", "replace")
    _assert_clean(done.returncode, stdout, stderr, expect)


# --- the other hostile values, through click's runner --------------------------------------------

HUGE = "99999999999999999999"
INT64_MAX = "9223372036854775807"
CASES: list[tuple[list[str], Expect]] = [
    # lone surrogates, as an API caller's str could hold them
    (["ls", "--prefix", "\ud800"], "either"),
    (["stats", "--prefix", "\udfff"], "either"),
    (["show", "\ud800"], "error"),
    (["import", "--format", "pi", "FILE:pi-ok", "--session", "\ud800"], "error"),
    (["fork", "demo", "x\ud800"], "error"),
    # numbers no backend stores
    (["ls", "--limit", INT64_MAX], "either"),
    (["ls", "--limit", HUGE], "either"),
    (["ls", "--limit", "-" + HUGE], "error"),
    (["stats", "--top", HUGE], "ok"),
    (["purge", "--older-than", "1d", "--batch-size", HUGE], "ok"),
    (["purge", "--older-than", "1d", "--batch-size", "-1"], "error"),
    (["migrate", "--partitions", HUGE], "error"),
    # durations no datetime holds
    (["purge", "--older-than", HUGE + "d"], "error"),
    (["purge", "--older-than", "1000000w"], "ok"),
    (["purge", "--older-than", "1" * 5000 + "s"], "error"),
    # URL options out of range
    (["demo", "--url", "sqlite:///URL.db?busy_timeout=-5"], "error"),
    (["ls", "--url", "sqlite:///URL.db?busy_timeout=nan"], "error"),
    (["ls", "--url", "sqlite:///URL.db?busy_timeout=inf"], "error"),
    (["ls", "--url", "sqlite:///URL.db?busy_timeout=1e300"], "error"),
    (["ls", "--url", "sqlite:///URL.db?busy_timeout=abc"], "error"),
    # malformed PostgreSQL URLs that hold a password
    (["ls", "--url", f"postgresql://postgres:{SECRET[:6]}%zz{SECRET[6:]}@127.0.0.1/x"], "error"),
    (["ls", "--url", f"postgresql://postgres:{SECRET}@[::1/x"], "error"),
    (["migrate", "--url", f"postgresql://postgres:{SECRET}@[::1/x"], "error"),
    (["stats", "--url", f"postgres://postgres:{SECRET[:6]}%zz{SECRET[6:]}@127.0.0.1/x"], "error"),
    # files: lines nested 5000 deep, bad headers, escaped lone surrogates, huge versions
    (["import", "--format", "pi", "FILE:pi-deep"], "error"),
    (["import", "--format", "pi", "--skip-bad", "FILE:pi-deep"], "either"),
    (["import", "--format", "pi", "--skip-bad", "FILE:pi-deep-header"], "either"),
    (["import", "--format", "pi", "--skip-bad", "FILE:pi-1e400-header"], "either"),
    (["import", "--format", "claude-code", "FILE:cc-deep"], "error"),
    (["import", "--format", "claude-code", "--skip-bad", "FILE:cc-deep"], "either"),
    (["import", "--format", "codex", "FILE:codex-deep"], "error"),
    (["import", "--format", "codex", "--skip-bad", "FILE:codex-deep"], "either"),
    (["import", "--format", "jsonl", "FILE:jsonl-deep"], "error"),
    (["import", "--format", "flue", "FILE:flue-deep"], "error"),
    (["import", "--format", "flue", "FILE:flue-surrogate-id"], "error"),
    (["import", "--format", "flue", "FILE:flue-surrogate-leaf"], "error"),
    # a cursor that base64 decoding would half-accept
    (["ls", "--cursor", "!!!"], "error"),
]


@pytest.mark.parametrize(("args", "expect"), _cases(CASES))  # type: ignore[arg-type]
def test_hostile_values(tmp_path: Path, url: str, args: list[str], expect: Expect) -> None:
    files = _files(tmp_path)
    argv = [
        str(files[arg[5:]])
        if arg.startswith("FILE:")
        else arg.replace("URL.db", str(tmp_path / "u.db"))
        for arg in args
    ]
    if "--url" not in argv:
        argv += ["--url", url]
    result = CliRunner().invoke(cli, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    _assert_clean(result.exit_code, result.stdout, result.stderr, expect)


# --- the same on PostgreSQL ---------------------------------------------------------------------

PG_CASES: list[tuple[list[str], Expect]] = [
    (["ls", "--prefix", "\udcff"], "either"),
    (["stats", "--prefix", "\ud800"], "either"),
    (["ls", "--prefix", "\x00"], "either"),
    (["ls", "--cursor", "AA=="], "either"),
    (["ls", "--limit", INT64_MAX], "either"),
    (["purge", "--older-than", "1d", "--batch-size", HUGE], "ok"),
    (["purge", "--older-than", "1000000w"], "ok"),
    (["show", "\x00"], "error"),
]


@pytest.mark.postgres
@pytest.mark.parametrize(("args", "expect"), _cases(PG_CASES))  # type: ignore[arg-type]
def test_hostile_values_on_postgres(args: list[str], expect: Expect) -> None:
    import pgserver

    dsn = pgserver.dsn_or_skip()
    pg_url = pgserver.with_search_path(dsn, pgserver.make_schema("cli_hostile"))
    with eventlog.connect(pg_url) as store:
        write_demo_session(store)
    result = CliRunner().invoke(cli, [*args, "--url", pg_url])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    _assert_clean(result.exit_code, result.stdout, result.stderr, expect)


def test_a_dump_header_with_a_huge_first_version_is_refused_quickly(tmp_path: Path) -> None:
    dump = _files(tmp_path)["dump-first-version"]
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", "import", "--format", "jsonl", str(dump)],
        cwd=tmp_path,
        env={**os.environ, "EVENTLOG_URL": "memory://"},
        capture_output=True,
        text=True,
        timeout=30,  # it wrote 10^8 placeholder versions first: days
        check=False,
    )
    _assert_clean(done.returncode, done.stdout, done.stderr, "error")


def test_a_purged_dump_beyond_the_placeholder_bound_needs_the_flag(tmp_path: Path) -> None:
    path = tmp_path / "purged.jsonl"
    path.write_text(
        '{"eventlog_dump":1,"session_id":"P","version":3,"first_version":3}\n'
        '{"v":3,"mode":"snapshot","leaf_id":"a","removed":[],"entries":1}\n'
        '{"id":"a","parent_id":null,"kind":"m","timestamp":null,"payload":{}}\n'
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    args = ["import", "--url", url, "--format", "jsonl", str(path)]
    refused = CliRunner().invoke(cli, [*args, "--max-purged-versions", "1"])
    _assert_clean(refused.exit_code, refused.stdout, refused.stderr, "error")
    assert "placeholder versions" in refused.stderr
    with eventlog.connect(url) as store:
        assert store.load("P") is None
    accepted = CliRunner().invoke(cli, [*args, "--max-purged-versions", "2"])
    assert accepted.exit_code == 0, accepted.output
    with eventlog.connect(url) as store:
        loaded = store.load("P")
        assert loaded is not None and loaded.version == 3
