"""Multi-megabyte sessions per format, built from real fixtures' records (benchmarks.big_sessions).

pi's is pi-mono's own 2.4 MB fixture (test_pi_migration.py); the others are
generated, deterministically, since their tools publish no large session.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventlog
from benchmarks.big_sessions import (
    write_claude_agent,
    write_claude_project,
    write_claude_session,
    write_flue_stream,
    write_opencode_storage,
)
from eventlog import Store
from eventlog.cli import cli
from eventlog.formats import export_file, import_file
from eventlog.formats.opencode import import_opencode

MB = 1 << 20


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with eventlog.connect(f"sqlite:///{tmp_path / 'big.db'}") as store:
        yield store


def _exports_as_it_came(store: Store, format: str, session_id: str, source: Path) -> None:
    out = source.with_suffix(".out")
    export_file(store, format, session_id, out)
    exported, original = out.read_bytes().splitlines(), source.read_bytes().splitlines()
    assert len(exported) == len(original)
    assert [json.loads(line) for line in exported] == [json.loads(line) for line in original]
    assert exported == original


def test_generated_files_are_deterministic(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_claude_session(tmp_path / f"{name}.jsonl", "s", min_bytes=MB // 4)
        write_flue_stream(tmp_path / f"{name}.flue", min_bytes=MB // 4)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert (tmp_path / "a.flue").read_bytes() == (tmp_path / "b.flue").read_bytes()


def test_claude_code_session_of_3_mb_exports_line_for_line(
    sqlite_store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "big.jsonl"
    lines = write_claude_session(source, "big", min_bytes=3 * MB)
    assert source.stat().st_size >= 3 * MB
    result = import_file(sqlite_store, "claude-code", source, session_id="big")
    assert result.entries == lines
    _exports_as_it_came(sqlite_store, "claude-code", "big", source)


def test_claude_code_sub_agent_of_1_mb_ends_on_its_last_uuid_line(
    sqlite_store: Store, tmp_path: Path
) -> None:
    source = tmp_path / "agent-a1b2c3.jsonl"
    write_claude_agent(source, "big", "a1b2c3", min_bytes=MB)
    records = [json.loads(line) for line in source.read_bytes().splitlines()]
    assert all(record.get("isSidechain") is True for record in records if "uuid" in record)
    result = import_file(sqlite_store, "claude-code", source, session_id="agent")
    assert result.leaf_id == [record["uuid"] for record in records if "uuid" in record][-1]
    _exports_as_it_came(sqlite_store, "claude-code", "agent", source)


def test_claude_code_project_folder_imports_and_exports_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    files = write_claude_project(folder, total_bytes=3 * MB, session_bytes=MB)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    run = CliRunner().invoke(cli, ["import", "--url", url, "--format", "claude-code", str(folder)])
    assert run.exit_code == 0, run.output
    assert run.stdout.startswith(f"imported {files} of {files} files: ")
    with eventlog.connect(url) as store:
        for path in folder.rglob("*.jsonl"):
            session_id = path.relative_to(folder).with_suffix("").as_posix()
            _exports_as_it_came(store, "claude-code", session_id, path)


def test_flue_stream_of_3_mb_exports_record_for_record(sqlite_store: Store, tmp_path: Path) -> None:
    source = tmp_path / "stream.jsonl"
    records = write_flue_stream(source, min_bytes=3 * MB)
    result = import_file(sqlite_store, "flue-stream", source, session_id="big")
    assert result.entries == records
    _exports_as_it_came(sqlite_store, "flue-stream", "big", source)


def test_opencode_session_of_3_mb_reconciles_on_reimport(
    sqlite_store: Store, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    files = write_opencode_storage(storage, min_bytes=3 * MB)
    (first,) = import_opencode(sqlite_store, storage).imported
    assert first.entries == files
    again = import_opencode(sqlite_store, storage)
    assert (again.imported[0].version, again.imported[0].appended) == (first.version, 0)
    # Revert cleanup deletes the last message and its parts.
    last = sorted((storage / "message" / first.session_id).glob("*.json"))[-1]
    parts = len(list((storage / "part" / last.stem).glob("*.json")))
    last.unlink()
    shutil.rmtree(storage / "part" / last.stem)
    (after,) = import_opencode(sqlite_store, storage).imported
    assert (after.tombstoned, after.entries) == (1 + parts, files - 1 - parts)
