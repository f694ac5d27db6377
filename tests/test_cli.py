"""The command line: demo, ls and show on a real SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventlog
from eventlog.cli import cli


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
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
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
