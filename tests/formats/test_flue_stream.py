"""Flue 2.x conversation streams: records as entries, Flue's tree, records back byte for byte."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from eventlog import Entry, SessionDelta, Store
from eventlog.errors import InvalidInputError
from eventlog.formats import MalformedLineError, export_file, import_file, read_session

from .helpers import FIXTURES

STREAM = FIXTURES / "flue_stream.jsonl"
CONV = "conv_01JZ0000000000000000000000"


def test_round_trip_is_byte_exact(store: Store, tmp_path: Path) -> None:
    result = import_file(store, "flue-stream", STREAM)
    assert result.session_id == CONV and result.entries == 22
    out = tmp_path / "out.jsonl"
    export_file(store, "flue-stream", CONV, out)
    assert out.read_bytes() == STREAM.read_bytes()


def test_ids_and_parents_come_from_the_records(store: Store) -> None:
    import_file(store, "flue-stream", STREAM)
    data = store.load(CONV)
    assert data is not None
    by_id = {entry.id: entry for entry in data.entries}
    assert by_id["entry_u1"].parent_id is None
    assert by_id["entry_a1"].parent_id == "entry_u1"
    assert by_id["entry_k1"].parent_id == "entry_a1"  # the compaction, by its entryId
    assert by_id["entry_u2"].parent_id == "entry_k1"
    delta = next(entry for entry in data.entries if entry.kind == "assistant_text_delta")
    assert delta.parent_id == "entry_a2" and delta.id.startswith("record_")
    outcome = next(entry for entry in data.entries if entry.kind == "tool_outcome")
    assert outcome.parent_id == "entry_a1"
    created = data.entries[0]
    assert created.kind == "conversation_created" and created.parent_id is None
    assert data.leaf_id == "entry_u2"  # the last active_leaf_changed (a rewind)
    assert data.metadata["flue.stream"] == {
        "conversationId": CONV,
        "harness": "default",
        "session": "main",
    }
    path = [entry.id for entry in store.path(CONV)]  # type: ignore[attr-defined]
    assert path == ["entry_u1", "entry_a1", "entry_k1", "entry_u2"]


def test_reimport_is_idempotent(store: Store) -> None:
    first = import_file(store, "flue-stream", STREAM)
    again = import_file(store, "flue-stream", STREAM)
    assert again.appended == 0 and again.already_stored == 22
    assert again.version == first.version


def test_a_fork_exports_the_same_records(store: Store, tmp_path: Path) -> None:
    import_file(store, "flue-stream", STREAM)
    store.fork(CONV, "forked")
    out = tmp_path / "fork.jsonl"
    export_file(store, "flue-stream", "forked", out)
    assert out.read_bytes() == STREAM.read_bytes()


def test_without_active_leaf_changed_the_leaf_is_the_last_entry() -> None:
    lines = STREAM.read_bytes().splitlines()
    kept = [line for line in lines if b'"active_leaf_changed"' not in line]
    data = read_session("flue-stream", io.BytesIO(b"\n".join(kept) + b"\n"))
    assert data.leaf_id == "entry_a2"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"v":2,"id":"r","type":"x"}', "'v': 1"),
        (b'{"v":1,"type":"x"}', "string 'id'"),
        (b'{"v":1,"id":"r","type":"user_message","messageId":7}', "'messageId'"),
        (b'{"v":1,"id":"r","type":"x","secret":"hunter2"', "not valid JSON"),
    ],
)
def test_bad_records_are_typed_errors(line: bytes, reason: str) -> None:
    text = STREAM.read_bytes().splitlines()[0] + b"\n" + line + b"\n"
    with pytest.raises(MalformedLineError) as caught:
        read_session("flue-stream", io.BytesIO(text))
    assert caught.value.line == 2 and reason in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_leaf_naming_no_entry_is_refused() -> None:
    first = STREAM.read_bytes().splitlines()[0]
    bad = b'{"v":1,"id":"r9","type":"active_leaf_changed","leafId":"nowhere"}'
    with pytest.raises(MalformedLineError):
        read_session("flue-stream", io.BytesIO(first + b"\n" + bad + b"\n"))


def test_an_entry_not_from_a_stream_is_refused_and_no_file_written(
    store: Store, tmp_path: Path
) -> None:
    import_file(store, "flue-stream", STREAM)
    store.save_delta(CONV, SessionDelta(new_entries=[Entry("mine", None, "note", None, {"a": 1})]))
    out = tmp_path / "out.jsonl"
    with pytest.raises(InvalidInputError) as caught:
        export_file(store, "flue-stream", CONV, out)
    assert caught.value.entry_id == "mine"
    assert not out.exists()
