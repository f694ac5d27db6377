"""Export then import gives back every entry exactly, whatever its payload's keys are named."""

from __future__ import annotations

from pathlib import Path

import pytest

import eventlog
from eventlog import Entry, SessionDelta, Store
from eventlog.formats import export_file, import_file

from .helpers import FIXTURES, parsed

# Every key a tool format maps to an entry field, and keys that look like escaped ones.
FORMAT_KEYS = (
    "type",
    "id",
    "parentId",
    "timestamp",
    "uuid",
    "parentUuid",
    "logicalParentUuid",
    "subtype",
    "eventlog.payload",
    "eventlog.payload.id",
    "eventlog.payload.eventlog.payload.type",
    "eventlog.payload.other",
)

PAYLOADS: list[dict[str, object]] = [
    *({key: "v", "role": "user"} for key in FORMAT_KEYS),
    *({"role": "user", key: None} for key in FORMAT_KEYS),
    # The OpenAI Agents adapter's items carry the SDK's own type and id.
    {"type": "function_call", "id": "fc_123", "call_id": "call_1", "name": "w", "arguments": "{}"},
    {"type": "message", "id": "msg_abc", "role": "assistant", "content": []},
    # Mapped keys apart, among others, holding the entry's own values and others.
    {"id": "e3", "x": 1.5, "type": "message", "n": {"id": 2}, "timestamp": 5, "parentId": "zz"},
    {"uuid": "e5", "parentUuid": None, "subtype": "s", "isSidechain": False, "big": 2**70},
    {"summary": "no colliding key at all", "z": "\u0000", "neg": -0.0},
    {},
]


def _entries() -> list[Entry]:
    entries = []
    parent = None
    for index, payload in enumerate(PAYLOADS):
        entry_id = f"e{index}"
        kind = "system/compact_boundary" if index % 5 == 4 else "message"
        timestamp = None if index % 3 else "2026-01-01T00:00:00.000Z"
        entries.append(Entry(entry_id, parent, kind, timestamp, payload))
        parent = entry_id
    return entries


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    return eventlog.connect(f"sqlite:///{tmp_path / 'target.db'}")


@pytest.mark.parametrize("format", ["flue", "pi", "claude-code"])
def test_export_then_import_gives_back_payloads_with_keys_named_like_format_fields(
    sqlite_store: Store, tmp_path: Path, format: str
) -> None:
    with sqlite_store as store:
        entries = _entries()
        store.save_delta("s", SessionDelta(new_entries=entries, leaf_id=entries[-1].id))
        original = store.load("s", raw=True)
        assert original is not None
        out = tmp_path / "out.file"
        export_file(store, format, "s", out)
        import_file(store, format, out, session_id="back")
        back = store.load("back", raw=True)
        assert back is not None
        assert [
            (e.id, e.parent_id, e.kind, e.timestamp, bytes(e.payload)) for e in back.entries
        ] == [(e.id, e.parent_id, e.kind, e.timestamp, bytes(e.payload)) for e in original.entries]
        assert back.leaf_id == original.leaf_id
        # The file of an unchanged import exports back the same, line by line.
        again = tmp_path / "again.file"
        export_file(store, format, "back", again)
        assert again.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("via", ["pi", "claude-code"])
def test_flue_entries_survive_a_trip_through_another_format(
    sqlite_store: Store, tmp_path: Path, via: str
) -> None:
    with sqlite_store as store:
        import_file(store, "flue", FIXTURES / "flue_v8.json", session_id="s")
        middle = tmp_path / "middle.file"
        export_file(store, via, "s", middle)
        import_file(store, via, middle, session_id="t")
        out = tmp_path / "out.json"
        export_file(store, "flue", "t", out)
        assert parsed(out)["entries"] == parsed(FIXTURES / "flue_v8.json")["entries"]
