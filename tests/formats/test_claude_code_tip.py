"""Claude Code: importer and exporter agree on the tip, so an unchanged import exports in order."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog import Store
from eventlog.formats import export_file, import_file, read_session, write_session

from .helpers import FIXTURES

PROJECT = FIXTURES / "claude_project"
REAL = FIXTURES / "claude-code-log"
"""claude-code-log's own test data (fixtures/README.md)."""
FILES = [
    *sorted(PROJECT.rglob("*.jsonl")),
    FIXTURES / "claude_code.jsonl",
    *(
        REAL / f"{name}.jsonl"
        for name in ("representative_messages", "todowrite_examples", "session_b")
    ),
]


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_unchanged_import_exports_every_line_in_order(
    store: Store, path: Path, tmp_path: Path
) -> None:
    result = import_file(store, "claude-code", path, session_id="s")
    out = tmp_path / "out.jsonl"
    export_file(store, "claude-code", "s", out)
    exported = out.read_bytes().splitlines()
    source = path.read_bytes().splitlines()
    assert [json.loads(line) for line in exported] == [json.loads(line) for line in source]
    assert exported == source
    assert result.leaf_id is not None


def test_real_file_with_bad_lines_exports_its_good_lines_in_order(
    store: Store, tmp_path: Path
) -> None:
    """claude-code-log's edge_cases.jsonl: a string, a number, an array and an object
    without ``type`` on lines 13-16, and no line break after the last line."""
    path = REAL / "edge_cases.jsonl"
    result = import_file(store, "claude-code", path, session_id="s", skip_bad=True)
    assert result.bad_lines == (13, 14, 15, 16)
    lines = path.read_bytes().rstrip(b"\n").split(b"\n")
    good = [line for number, line in enumerate(lines, 1) if number not in result.bad_lines]
    out = tmp_path / "out.jsonl"
    export_file(store, "claude-code", "s", out)
    assert out.read_bytes().rstrip(b"\n").split(b"\n") == good


def test_sub_agent_file_tip_is_its_last_uuid_line(store: Store) -> None:
    agent = next(PROJECT.rglob("agent-a1b2c3.jsonl"))
    result = import_file(store, "claude-code", agent, session_id="agent")
    assert result.leaf_id == "g-05"  # every line a sidechain; the queue-operation has no uuid


def test_main_file_tip_skips_uuid_less_lines_written_last(store: Store) -> None:
    main = PROJECT / "7d2c1a30-0000-4000-8000-000000000001.jsonl"
    assert import_file(store, "claude-code", main, session_id="m").leaf_id == "s-11"


@st.composite
def _files(draw: st.DrawFn) -> bytes:
    """Claude Code files: uuid, uuid-less and repeated-uuid lines, sidechains, boundaries."""
    lines: list[str] = []
    uuids: list[str] = []
    for number in range(draw(st.integers(1, 12))):
        shape = draw(st.sampled_from(["uuid", "uuid", "uuid", "none", "repeat", "boundary"]))
        record: dict[str, object] = {
            "type": draw(st.sampled_from(["user", "assistant", "progress", "attachment"])),
            "isSidechain": draw(st.booleans()),
            "timestamp": f"2026-01-01T00:00:{number:02d}.000Z",
        }
        if shape == "none":
            record = {"type": draw(st.sampled_from(["ai-title", "last-prompt", "summary"]))}
        elif shape == "repeat" and uuids:
            record["uuid"] = draw(st.sampled_from(uuids))
            record["parentUuid"] = None
        elif shape == "boundary" and uuids:
            record.update(type="system", subtype="compact_boundary", parentUuid=None)
            record["logicalParentUuid"] = draw(st.sampled_from(uuids))
            record["uuid"] = f"u{number}"
        else:
            record["uuid"] = f"u{number}"
            record["parentUuid"] = draw(st.sampled_from([None, *uuids]))
        if isinstance(record.get("uuid"), str) and record["uuid"] not in uuids:
            uuids.append(str(record["uuid"]))
        lines.append(json.dumps(record, separators=(",", ":")))
    return "".join(line + "\n" for line in lines).encode()


@settings(max_examples=300, deadline=None)
@given(_files())
def test_any_file_round_trips_in_order(text: bytes) -> None:
    data = read_session("claude-code", io.BytesIO(text), session_id="s", raw=True)
    out = io.BytesIO()
    write_session("claude-code", data, out, session_id="s")
    assert out.getvalue() == text
