"""pi v1 and v2 files: migrated on import as pi migrates them on load, deterministically."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from eventlog import Store
from eventlog.formats import export_file, import_file, read_session

from .helpers import FIXTURES

V1_COMPACTION = FIXTURES / "pi-mono" / "before-compaction.jsonl"
V1_LARGE = FIXTURES / "pi-mono" / "large-session.jsonl"
_HEX8 = re.compile(r"[0-9a-f]{8}")


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _read(text: str) -> list[dict[str, Any]]:
    data = read_session("pi", io.BytesIO(text.encode()), raw=True)
    return [json.loads(bytes(entry.payload)) for entry in data.entries]  # type: ignore[arg-type]


@pytest.mark.parametrize("path", [V1_COMPACTION, V1_LARGE], ids=["compaction", "large"])
def test_real_v1_file_is_migrated_as_pi_does(store: Store, path: Path) -> None:
    source = _records(path)
    result = import_file(store, "pi", path)
    data = store.load(result.session_id)
    assert data is not None
    assert result.session_id == source[0]["id"]
    header = data.metadata["pi.header"]
    assert "version" not in source[0]
    assert list(header) == [*source[0], "version"]
    assert header["version"] == 3
    assert len(data.entries) == len(source) - 1
    previous: str | None = None
    for record, entry in zip(source[1:], data.entries, strict=True):
        payload = entry.payload
        assert isinstance(payload, dict)
        assert _HEX8.fullmatch(entry.id)
        assert entry.parent_id == previous == payload["parentId"]
        assert entry.kind == record["type"] and payload["id"] == entry.id
        kept = {key: value for key, value in record.items() if key != "firstKeptEntryIndex"}
        assert {key: payload[key] for key in kept} == kept  # every message, model and level change
        added = [key for key in payload if key not in kept]
        if "firstKeptEntryIndex" in record:
            target = data.entries[record["firstKeptEntryIndex"] - 1]
            assert payload["firstKeptEntryId"] == target.id
            assert added == ["id", "parentId", "firstKeptEntryId"]
        else:
            assert added == ["id", "parentId"]
        assert list(payload)[: len(kept)] == list(kept)  # pi appends, never reorders
        previous = entry.id
    assert data.leaf_id == data.entries[-1].id
    kinds = [entry.kind for entry in data.entries]
    assert kinds == [record["type"] for record in source[1:]]


def test_reimport_is_idempotent(store: Store) -> None:
    first = import_file(store, "pi", V1_COMPACTION)
    again = import_file(store, "pi", V1_COMPACTION)
    assert again.appended == 0
    assert again.already_stored == first.entries == 1002
    assert again.version == first.version


def test_export_is_current_format_and_imports_back_the_same(store: Store, tmp_path: Path) -> None:
    result = import_file(store, "pi", V1_COMPACTION)
    exported = tmp_path / "v3.jsonl"
    export_file(store, "pi", result.session_id, exported)
    records = _records(exported)
    assert records[0]["version"] == 3
    assert all(isinstance(record["id"], str) for record in records[1:])
    assert not any("firstKeptEntryIndex" in record for record in records)
    before = store.load(result.session_id, raw=True)
    again = import_file(store, "pi", exported)
    assert again.appended == 0 and again.already_stored == 1002
    after = store.load(result.session_id, raw=True)
    assert before is not None and after is not None
    assert after.entries == before.entries and after.leaf_id == before.leaf_id
    assert after.version == before.version  # nothing changed, nothing written
    assert after.metadata == before.metadata
    # The v3 export, read on its own, is the same session.
    with exported.open("rb") as stream:
        fresh = read_session("pi", stream, raw=True)
    assert fresh.entries == before.entries and fresh.leaf_id == before.leaf_id
    second = tmp_path / "again.jsonl"
    export_file(store, "pi", result.session_id, second)
    assert second.read_bytes() == exported.read_bytes()


def test_ids_do_not_depend_on_the_target_or_the_store(store: Store) -> None:
    first = import_file(store, "pi", V1_LARGE)
    other = import_file(store, "pi", V1_LARGE, session_id="copy")
    a = store.load(first.session_id, raw=True)
    b = store.load(other.session_id, raw=True)
    assert a is not None and b is not None
    assert [entry.id for entry in a.entries] == [entry.id for entry in b.entries]


_HEADER = '{"type":"session","id":"s1","timestamp":"2025-11-01T00:00:00.000Z","cwd":"/p"}\n'


def _entry(kind: str, **extra: Any) -> str:
    return json.dumps({"type": kind, "timestamp": "2025-11-01T00:00:01.000Z", **extra}) + "\n"


def test_first_kept_index_edge_cases() -> None:
    text = (
        _HEADER
        + _entry("message", message={"role": "user", "content": "a"})
        + _entry("compaction", summary="header", firstKeptEntryIndex=0)
        + _entry("compaction", summary="self", firstKeptEntryIndex=3)
        + _entry("compaction", summary="later", firstKeptEntryIndex=9)
        + _entry("compaction", summary="text", firstKeptEntryIndex="1")
        + _entry("compaction", summary="first", firstKeptEntryIndex=1)
        + _entry("custom", firstKeptEntryIndex=1)
        + _entry("compaction", summary="float", firstKeptEntryIndex=1.0)
        + _entry("compaction", summary="fraction", firstKeptEntryIndex=1.5)
    )
    header, self_ref, later, text_ref, first, custom, whole, fraction = _read(text)[1:]
    assert whole["firstKeptEntryId"] == _read(text)[0]["id"]
    assert "firstKeptEntryIndex" not in fraction and "firstKeptEntryId" not in fraction
    assert "firstKeptEntryIndex" not in header and "firstKeptEntryId" not in header
    assert self_ref["firstKeptEntryId"] == self_ref["id"]
    assert "firstKeptEntryIndex" not in later and "firstKeptEntryId" not in later
    assert text_ref["firstKeptEntryIndex"] == "1" and "firstKeptEntryId" not in text_ref
    assert first["firstKeptEntryId"] == _read(text)[0]["id"]
    assert custom["firstKeptEntryIndex"] == 1  # only compactions are converted


def test_skipped_bad_line_is_not_counted_in_indexes() -> None:
    text = (
        _HEADER
        + _entry("message", message={"role": "user", "content": "a"})
        + "not json\n"
        + _entry("message", message={"role": "user", "content": "b"})
        + _entry("compaction", summary="s", firstKeptEntryIndex=2)
    )
    data = read_session("pi", io.BytesIO(text.encode()), skip_bad=True)
    a, b, compaction = data.entries
    assert b.parent_id == a.id and compaction.parent_id == b.id
    assert isinstance(compaction.payload, dict)
    assert compaction.payload["firstKeptEntryId"] == b.id


def test_v2_hook_message_becomes_custom_and_ids_are_kept() -> None:
    text = (
        '{"type":"session","version":2,"id":"s2","timestamp":"t","cwd":"/p"}\n'
        '{"type":"message","id":"aaaaaaaa","parentId":null,"timestamp":"t",'
        '"message":{"role":"hookMessage","customType":"x","content":"hi","display":true}}\n'
        '{"type":"message","id":"bbbbbbbb","parentId":"aaaaaaaa","timestamp":"t",'
        '"message":{"role":"user","content":"hookMessage"}}\n'
    )
    data = read_session("pi", io.BytesIO(text.encode()), raw=True)
    assert [entry.id for entry in data.entries] == ["aaaaaaaa", "bbbbbbbb"]
    hook, user = (bytes(entry.payload) for entry in data.entries)  # type: ignore[arg-type]
    assert hook == (
        b'{"type":"message","id":"aaaaaaaa","parentId":null,"timestamp":"t",'
        b'"message":{"role":"custom","customType":"x","content":"hi","display":true}}'
    )
    assert json.loads(user)["message"] == {"role": "user", "content": "hookMessage"}
    assert isinstance(data.metadata, bytes)
    assert json.loads(data.metadata)["pi.header"]["version"] == 3


def test_v3_file_is_not_rewritten() -> None:
    text = (
        '{"type":"session","version":3,"id":"s3","timestamp":"t","cwd":"/p"}\n'
        '{"type":"message","id":"aaaaaaaa","parentId":null,"timestamp":"t",'
        '"message":{"role":"hookMessage","n":1.50}}\n'
    )
    data = read_session("pi", io.BytesIO(text.encode()), raw=True)
    assert bytes(data.entries[0].payload) == text.splitlines()[1].encode()  # type: ignore[arg-type]


def test_a_header_without_version_is_v1_even_if_lines_have_ids() -> None:
    # pi reads `header.version ?? 1` and gives every entry a new id; so does the import.
    text = _HEADER + '{"type":"message","id":"mine","parentId":null,"timestamp":"t"}\n'
    (entry,) = _read(text)
    assert entry["id"] != "mine" and _HEX8.fullmatch(entry["id"])
