"""pi-mono session JSONL: exact round trips, leaf rules, unknown types."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from eventlog import Entry, SessionDelta, Store
from eventlog.formats import export_file, import_file, read_session, write_session

from .helpers import FIXTURES, lines_of

PI = FIXTURES / "pi_v3.jsonl"
PI_LEAF = FIXTURES / "pi_leaf_entry.jsonl"
PI_SID = "0198f0c2-6a1e-7c3b-9d2e-5f4a3b2c1d0e"


def test_round_trip_is_byte_exact(store: Store, tmp_path: Path) -> None:
    result = import_file(store, "pi", PI)
    assert result.session_id == PI_SID
    out = tmp_path / "out.jsonl"
    export_file(store, "pi", PI_SID, out)
    assert out.read_bytes() == PI.read_bytes()


def test_header_becomes_metadata_and_last_line_is_leaf(store: Store) -> None:
    import_file(store, "pi", PI)
    data = store.load(PI_SID)
    assert data is not None
    assert data.metadata["pi.header"]["cwd"] == "/home/u/proj"
    assert data.leaf_id == "c9d0e1f2"
    assert len(data.entries) == 12
    kinds = [entry.kind for entry in data.entries]
    assert kinds[:3] == ["model_change", "thinking_level_change", "message"]
    assert "future_entry_kind" in kinds


def test_unknown_type_and_fields_are_kept(store: Store) -> None:
    import_file(store, "pi", PI)
    data = store.load(PI_SID)
    assert data is not None
    future = next(entry for entry in data.entries if entry.kind == "future_entry_kind")
    assert isinstance(future.payload, dict)
    assert future.payload["someNewField"] == {"x": 1e21, "y": -0.0}
    assert future.parent_id == "b8c9d0e1"
    assert future.timestamp == "2026-03-01T10:00:01.000Z"


def test_leaf_entry_names_the_tip_and_round_trips(store: Store, tmp_path: Path) -> None:
    result = import_file(store, "pi", PI_LEAF)
    assert result.leaf_id == "11111111"
    data = store.load(result.session_id)
    assert data is not None
    assert data.leaf_id == "11111111"
    assert data.metadata["pi.header"]["metadata"] == {"origin": "harness"}
    out = tmp_path / "out.jsonl"
    export_file(store, "pi", result.session_id, out)
    assert out.read_bytes() == PI_LEAF.read_bytes()


def test_export_writes_the_active_branch_last(store: Store, tmp_path: Path) -> None:
    import_file(store, "pi", PI)
    # Move the leaf to the abandoned tool-result branch, as pi's branch() would.
    store.save_delta(PI_SID, SessionDelta(leaf_id="c0ffee01"))
    out = tmp_path / "branch.jsonl"
    export_file(store, "pi", PI_SID, out)
    written = lines_of(out)
    assert sorted(written) == sorted(lines_of(PI))
    ids = [json.loads(line).get("id") for line in written[1:]]
    # The branch root..leaf comes last, in path order.
    assert ids[-5:] == ["e0e0e0e0", "f0f0f0f0", "a1b2c3d4", "b2c3d4e5", "c0ffee01"]
    # pi takes the last line as the tip: a re-read resumes the same branch.
    again = read_session("pi", io.BytesIO(out.read_bytes()))
    assert again.leaf_id == "c0ffee01"


def test_native_entries_are_written_as_pi_lines() -> None:
    from eventlog import SessionData

    data = SessionData(
        entries=[
            Entry("aa", None, "message", "2026-01-01T00:00:00.000Z", {"message": {"role": "user"}}),
            Entry("bb", "aa", "custom", None, {"customType": "x"}),
        ],
        leaf_id="bb",
        metadata={},
    )
    out = io.BytesIO()
    write_session("pi", data, out, session_id="s-1")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"type": "session", "version": 3, "id": "s-1", "timestamp": None, "cwd": ""}
    assert lines[1] == {
        "type": "message",
        "id": "aa",
        "parentId": None,
        "timestamp": "2026-01-01T00:00:00.000Z",
        "eventlog.payload": True,
        "message": {"role": "user"},
    }
    assert lines[2] == {
        "type": "custom",
        "id": "bb",
        "parentId": "aa",
        "eventlog.payload": True,
        "customType": "x",
    }
    again = read_session("pi", io.BytesIO(out.getvalue()))
    assert again.leaf_id == "bb"
    # A line built from an entry imports as that entry, its payload as it was.
    assert again.entries == data.entries


def test_reimport_is_idempotent(store: Store) -> None:
    first = import_file(store, "pi", PI)
    second = import_file(store, "pi", PI)
    assert first.appended == 12
    assert second.appended == 0
    assert second.already_stored == 12
    assert second.version == first.version


def test_first_line_must_be_a_header(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "noheader.jsonl"
    bad.write_bytes(b"\n".join(lines_of(PI)[1:]) + b"\n")
    from eventlog.formats import MalformedLineError

    with pytest.raises(MalformedLineError) as caught:
        import_file(store, "pi", bad, session_id="s")
    assert caught.value.line == 1
    assert store.load("s") is None


def test_duplicate_id_is_a_malformed_line(store: Store, tmp_path: Path) -> None:
    lines = lines_of(PI)
    bad = tmp_path / "dup.jsonl"
    bad.write_bytes(b"\n".join([*lines, lines[3]]) + b"\n")
    from eventlog.formats import MalformedLineError

    with pytest.raises(MalformedLineError) as caught:
        import_file(store, "pi", bad)
    assert caught.value.line == 14
    assert caught.value.entry_id == "a1b2c3d4"
    assert store.load(PI_SID) is None
