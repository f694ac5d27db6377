"""Importing a Claude Code project folder or a pi sessions folder: every session, linked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventlog import Store, connect
from eventlog.cli import cli
from eventlog.errors import InvalidInputError
from eventlog.formats import MalformedLineError
from eventlog.formats.folders import AGENT_KEY, PARENT_KEY, folder_files, import_folder

from .helpers import FIXTURES

PROJECT = FIXTURES / "claude_project"
S1 = "7d2c1a30-0000-4000-8000-000000000001"
S2 = "7d2c1a30-0000-4000-8000-000000000002"
AGENT = f"{S1}/subagents/agent-a1b2c3"
PI_V1 = FIXTURES / "pi-mono" / "before-compaction.jsonl"


def test_claude_project_imports_every_session_with_sub_agents_linked(store: Store) -> None:
    result = import_folder(store, "claude-code", PROJECT)
    assert result.failed == ()
    ids = [imported.session_id for imported in result.imported]
    assert ids == [S1, AGENT, S2, "agent-0ld4g3nt"]  # a parent before its sub-agents
    agent = store.load(AGENT)
    assert agent is not None
    assert agent.metadata[PARENT_KEY] == S1
    assert agent.metadata[AGENT_KEY] == {
        "agentId": "a1b2c3",
        "meta": {
            "agentType": "general-purpose",
            "description": "Read CI logs",
            "toolUseId": "toolu_01",
        },
    }
    old = store.load("agent-0ld4g3nt")
    assert old is not None and old.metadata[PARENT_KEY] == S1
    parent = store.load(S1)
    assert parent is not None and PARENT_KEY not in parent.metadata
    assert result.entries == sum(
        len(path.read_bytes().splitlines()) for path in PROJECT.rglob("*.jsonl")
    )


def _version(store: Store, session_id: str) -> int:
    data = store.load(session_id)
    assert data is not None
    return data.version


def test_reimporting_a_folder_writes_nothing(store: Store) -> None:
    import_folder(store, "claude-code", PROJECT)
    versions = {sid: _version(store, sid) for sid in (S1, S2, AGENT)}
    again = import_folder(store, "claude-code", PROJECT)
    assert again.appended == 0 and again.failed == ()
    assert {sid: _version(store, sid) for sid in versions} == versions


def _broken_project(tmp_path: Path) -> Path:
    folder = tmp_path / "-home-u-proj"
    shutil.copytree(PROJECT, folder)
    agent = folder / S1 / "subagents" / "agent-a1b2c3.jsonl"
    lines = agent.read_bytes().splitlines()
    lines.insert(2, b'{"type":"user","uuid":"g-x","secret":"hunter2"')  # cut short
    agent.write_bytes(b"\n".join(lines) + b"\n")
    return folder


def test_a_bad_file_is_reported_and_the_others_import(store: Store, tmp_path: Path) -> None:
    folder = _broken_project(tmp_path)
    result = import_folder(store, "claude-code", folder)
    assert [imported.session_id for imported in result.imported] == [S1, S2, "agent-0ld4g3nt"]
    (failure,) = result.failed
    assert failure.path == folder / S1 / "subagents" / "agent-a1b2c3.jsonl"
    assert isinstance(failure.error, MalformedLineError)
    assert failure.error.line == 3
    assert "hunter2" not in str(failure.error)
    assert store.load(AGENT) is None  # all or nothing, per file


def test_skip_bad_applies_per_file(store: Store, tmp_path: Path) -> None:
    result = import_folder(store, "claude-code", _broken_project(tmp_path), skip_bad=True)
    assert result.failed == () and result.skipped_bad == 1
    agent = store.load(AGENT)
    assert agent is not None and len(agent.entries) == 6


def _pi_folder(tmp_path: Path) -> Path:
    """A pi sessions folder: a v1 session, and a fork of it naming it as its parent."""
    root = tmp_path / "sessions" / "--home-u-proj--"
    root.mkdir(parents=True)
    parent = root / "2025-12-09T00-53-29-825Z_ffae836b.jsonl"
    shutil.copy(PI_V1, parent)
    header = {
        "type": "session",
        "version": 3,
        "id": "fork-1",
        "timestamp": "2025-12-10T00:00:00.000Z",
        "cwd": "/home/u/proj",
        "parentSession": f"/Users/someone/.pi/agent/sessions/--home-u-proj--/{parent.name}",
    }
    entry = {
        "type": "message",
        "id": "aaaaaaaa",
        "parentId": None,
        "timestamp": "2025-12-10T00:00:01.000Z",
        "message": {"role": "user", "content": "hi", "timestamp": 1765324801000},
    }
    # Sorted first by name, imported after its parent.
    (root / "0000_fork.jsonl").write_text(json.dumps(header) + "\n" + json.dumps(entry) + "\n")
    return tmp_path / "sessions"


def test_pi_folder_links_forks_to_their_parent(store: Store, tmp_path: Path) -> None:
    folder = _pi_folder(tmp_path)
    found = folder_files("pi", folder)
    assert [path.path.name for path in found][-1] == "0000_fork.jsonl"
    result = import_folder(store, "pi", folder)
    assert result.failed == ()
    parent_id = "ffae836b-9420-4060-ac13-7745215f90ff"
    assert [imported.session_id for imported in result.imported] == [parent_id, "fork-1"]
    fork = store.load("fork-1")
    assert fork is not None and fork.metadata[PARENT_KEY] == parent_id
    parent = store.load(parent_id)
    assert parent is not None and len(parent.entries) == 1002


def test_formats_without_a_folder_layout_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        folder_files("codex", tmp_path)
    with pytest.raises(InvalidInputError):
        folder_files("pi", tmp_path / "missing")


def test_cli_imports_a_folder_with_one_summary_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    folder = _broken_project(tmp_path)
    run = CliRunner().invoke(cli, ["import", "--url", url, "--format", "claude-code", str(folder)])
    assert run.exit_code == 1
    assert run.stdout.splitlines() == [
        "imported 3 of 4 files: 21 entries, 21 new; 1 failed",
    ]
    (error,) = run.stderr.splitlines()
    assert error.startswith(f"eventlog: {S1}/subagents/agent-a1b2c3.jsonl: MalformedLineError:")
    assert "agent-a1b2c3.jsonl:3" in error and "hunter2" not in error
    run = CliRunner().invoke(
        cli, ["import", "--url", url, "--format", "claude-code", "--skip-bad", str(folder)]
    )
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines() == [
        "imported 4 of 4 files: 27 entries, 6 new, 1 malformed lines skipped; 0 failed",
    ]
    with connect(url) as store:
        assert store.load(AGENT) is not None


def test_cli_refuses_session_for_a_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    run = CliRunner().invoke(
        cli, ["import", "--url", url, "--format", "pi", "--session", "x", str(tmp_path)]
    )
    assert run.exit_code == 2
    assert "--session does not apply to a folder or database" in run.output
