"""Claude Code session JSONL: every line kept in order, exact round trip, leaf rule."""

from __future__ import annotations

import io
import json
from pathlib import Path

from eventlog import SessionDelta, Store
from eventlog.formats import SYNTHETIC_PREFIX, export_file, import_file, read_session

from .helpers import FIXTURES, lines_of

CLAUDE = FIXTURES / "claude_code.jsonl"
SID = "claude_code"  # the file name's stem
U = "6f1c0000-0000-4000-8000-0000000000"


def test_round_trip_is_byte_exact(store: Store, tmp_path: Path) -> None:
    result = import_file(store, "claude-code", CLAUDE)
    assert result.session_id == SID
    out = tmp_path / "out.jsonl"
    export_file(store, "claude-code", SID, out)
    assert out.read_bytes() == CLAUDE.read_bytes()


def test_every_line_is_an_entry_in_file_order(store: Store) -> None:
    import_file(store, "claude-code", CLAUDE)
    data = store.load(SID)
    assert data is not None
    assert len(data.entries) == len(lines_of(CLAUDE)) == 13
    assert [entry.kind for entry in data.entries] == [json_kind(line) for line in lines_of(CLAUDE)]
    assert data.entries[7].kind == "system/compact_boundary"


def json_kind(line: bytes) -> str:
    record = json.loads(line)
    subtype = record.get("subtype")
    return f"{record['type']}/{subtype}" if subtype else str(record["type"])


def test_uuid_less_and_repeated_lines_get_synthetic_ids(store: Store) -> None:
    import_file(store, "claude-code", CLAUDE)
    data = store.load(SID)
    assert data is not None
    synthetic = [entry for entry in data.entries if entry.id.startswith(SYNTHETIC_PREFIX)]
    assert [entry.kind for entry in synthetic] == [
        "summary",
        "file-history-snapshot",
        "user",  # repeats the uuid of line 2 (a continuation copy)
        "queue-operation",
        "ai-title",
        "last-prompt",
    ]
    assert all(entry.parent_id is None for entry in synthetic)
    # The payload is the original line: no synthetic id leaks into it.
    assert all("uuid" not in entry.payload or entry.kind == "user" for entry in synthetic)
    first_user = next(entry for entry in data.entries if entry.id == f"{U}01")
    assert isinstance(first_user.payload, dict)
    assert first_user.payload["message"]["content"] == "Why does CI fail?"


def test_compaction_boundary_hangs_under_its_logical_parent(store: Store) -> None:
    import_file(store, "claude-code", CLAUDE)
    data = store.load(SID)
    assert data is not None
    boundary = next(entry for entry in data.entries if entry.kind == "system/compact_boundary")
    assert boundary.parent_id == f"{U}04"
    assert isinstance(boundary.payload, dict)
    assert boundary.payload["parentUuid"] is None


def test_leaf_is_last_uuid_line_off_sidechains(store: Store) -> None:
    result = import_file(store, "claude-code", CLAUDE)
    assert result.leaf_id == f"{U}10"
    path = store.path(SID)
    assert [entry.id for entry in path] == [
        f"{U}01",
        f"{U}02",
        f"{U}03",
        f"{U}04",
        f"{U}09",
        f"{U}10",
    ]


def test_split_assistant_lines_stay_separate(store: Store) -> None:
    import_file(store, "claude-code", CLAUDE)
    data = store.load(SID)
    assert data is not None
    replies = [entry for entry in data.entries if entry.kind == "assistant"]
    assert len(replies) == 2
    assert {
        entry.payload["message"]["id"] for entry in replies if isinstance(entry.payload, dict)
    } == {"msg_01"}


def test_reimport_is_idempotent(store: Store) -> None:
    first = import_file(store, "claude-code", CLAUDE)
    second = import_file(store, "claude-code", CLAUDE)
    assert (second.appended, second.already_stored) == (0, 13)
    assert second.version == first.version


def test_export_puts_a_moved_leaf_last(store: Store, tmp_path: Path) -> None:
    import_file(store, "claude-code", CLAUDE)
    store.save_delta(SID, SessionDelta(leaf_id=f"{U}03"))
    out = tmp_path / "moved.jsonl"
    export_file(store, "claude-code", SID, out)
    assert sorted(lines_of(out)) == sorted(lines_of(CLAUDE))
    assert json.loads(lines_of(out)[-1])["uuid"] == f"{U}03"
    assert read_session("claude-code", io.BytesIO(out.read_bytes())).leaf_id == f"{U}03"
