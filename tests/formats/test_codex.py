"""Codex rollouts: import only, deterministic ids, a linear chain."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from eventlog import InvalidInputError, SessionData, Store
from eventlog.formats import export_file, import_file, read_session, write_session

from .helpers import FIXTURES, lines_of

CODEX = FIXTURES / "codex_rollout.jsonl"
SID = "5973b6c0-94b8-487b-a530-2aeb6098ae0e"


def test_import_maps_lines_to_a_chain(store: Store) -> None:
    result = import_file(store, "codex", CODEX)
    assert result.session_id == SID
    data = store.load(SID)
    assert data is not None
    assert len(data.entries) == len(lines_of(CODEX)) == 12
    assert [entry.kind for entry in data.entries][:6] == [
        "session_meta",
        "turn_context",
        "event_msg/user_message",
        "response_item/message",
        "response_item/reasoning",
        "response_item/function_call",
    ]
    assert data.entries[-1].kind == "inter_agent_communication"
    assert data.entries[0].parent_id is None
    for previous, entry in zip(data.entries, data.entries[1:], strict=False):
        assert entry.parent_id == previous.id
    assert data.leaf_id == data.entries[-1].id
    assert data.metadata["codex.session_meta"]["git"] == {"branch": "main"}
    assert data.entries[3].timestamp == "2025-11-20T10:00:01.100Z"


def test_payload_is_the_whole_line(store: Store) -> None:
    import_file(store, "codex", CODEX)
    raw = store.load(SID, raw=True)
    assert raw is not None
    assert [bytes(entry.payload) for entry in raw.entries] == lines_of(CODEX)


def test_ids_are_deterministic_and_reimport_is_idempotent(store: Store) -> None:
    first = import_file(store, "codex", CODEX)
    ids = [entry.id for entry in (store.load(SID) or SessionData()).entries]
    second = import_file(store, "codex", CODEX)
    assert second.appended == 0
    assert second.already_stored == 12
    assert second.version == first.version
    assert [
        entry.id for entry in read_session("codex", io.BytesIO(CODEX.read_bytes())).entries
    ] == ids


def test_ids_differ_per_session(store: Store) -> None:
    import_file(store, "codex", CODEX, session_id="other")
    other = store.load("other")
    assert other is not None
    assert store.load(SID) is None
    theirs = read_session("codex", io.BytesIO(CODEX.read_bytes()))
    assert {entry.id for entry in other.entries}.isdisjoint(entry.id for entry in theirs.entries)


def test_codex_cannot_be_exported(store: Store, tmp_path: Path) -> None:
    import_file(store, "codex", CODEX)
    with pytest.raises(InvalidInputError):
        export_file(store, "codex", SID, tmp_path / "x.jsonl")
    with pytest.raises(InvalidInputError):
        write_session("codex", SessionData(), io.BytesIO())
    assert not (tmp_path / "x.jsonl").exists()
