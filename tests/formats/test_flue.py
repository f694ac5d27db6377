"""Flue SessionData JSON: lossless both ways, streamed element by element."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from eventlog import Entry, SessionData, SessionDelta, Store
from eventlog.formats import (
    MalformedLineError,
    export_file,
    import_file,
    read_session,
    write_session,
)

from .helpers import FIXTURES, parsed

V3 = FIXTURES / "flue_v3.json"
V8 = FIXTURES / "flue_v8.json"


@pytest.mark.parametrize("fixture", [V3, V8], ids=["v3", "v8"])
def test_round_trip_gives_identical_json(store: Store, tmp_path: Path, fixture: Path) -> None:
    result = import_file(store, "flue", fixture, session_id="s")
    out = tmp_path / "out.json"
    export_file(store, "flue", "s", out)
    assert parsed(out) == parsed(fixture)
    # Key order survives too (top level and inside entries).
    assert list(parsed(out)) == list(parsed(fixture))
    for mine, theirs in zip(parsed(out)["entries"], parsed(fixture)["entries"], strict=True):
        assert list(mine) == list(theirs)
    assert result.leaf_id == parsed(fixture)["leafId"]


def test_compact_document_round_trips_byte_for_byte(store: Store, tmp_path: Path) -> None:
    import_file(store, "flue", V3, session_id="s")
    out = tmp_path / "out.json"
    export_file(store, "flue", "s", out)
    assert out.read_bytes().rstrip(b"\n") == V3.read_bytes().rstrip(b"\n")


def test_mapping(store: Store) -> None:
    import_file(store, "flue", V8, session_id="s")
    data = store.load("s")
    assert data is not None
    assert [entry.kind for entry in data.entries] == ["message", "message", "future_kind"]
    first = data.entries[0]
    assert first.timestamp == "2026-06-22T08:00:00.000Z"
    assert isinstance(first.payload, dict)
    assert set(first.payload) == {"message", "imageAttachmentIds", "directSubmissionId"}
    future = data.entries[2]
    assert isinstance(future.payload, dict)
    assert future.payload == {"unknownField": {"nested": [1, 2.5, None, False]}}
    assert data.metadata["flue.session"]["conversationId"] == "conv_01JZ8Q6V3M2N4P5R6S7T8V9W0X"
    assert data.leaf_id == "2d3c4b5a"


def test_app_metadata_is_the_session_metadata(store: Store) -> None:
    import_file(store, "flue", V3, session_id="s")
    data = store.load("s")
    assert data is not None
    assert {k: v for k, v in data.metadata.items() if k != "flue.session"} == {
        "tenant": "acme",
        "tags": ["ci"],
    }


def test_reimport_of_a_smaller_blob_tombstones_the_removed_entry(
    store: Store, tmp_path: Path
) -> None:
    import_file(store, "flue", V3, session_id="s")
    blob = parsed(V3)
    blob["entries"] = blob["entries"][:-1]  # Flue's removeLeafMessage
    blob["leafId"] = "b2c3d4e5"
    smaller = tmp_path / "smaller.json"
    smaller.write_text(json.dumps(blob))
    result = import_file(store, "flue", smaller, session_id="s")
    assert result.tombstoned == 1
    assert result.already_stored == 3
    out = tmp_path / "out.json"
    export_file(store, "flue", "s", out)
    assert parsed(out) == blob


def test_reimport_is_idempotent(store: Store) -> None:
    first = import_file(store, "flue", V8, session_id="s")
    second = import_file(store, "flue", V8, session_id="s")
    assert (second.appended, second.already_stored, second.version) == (0, 3, first.version)


def test_elements_larger_than_the_read_chunk_stream_correctly(store: Store, tmp_path: Path) -> None:
    entries = []
    parent = None
    for index in range(40):
        entry_id = f"{index:08x}"
        text = ("é" * 3000 + "\n") * (index % 7)  # crosses 64 KiB chunk borders
        entries.append(
            {
                "type": "message",
                "id": entry_id,
                "parentId": parent,
                "timestamp": "2026-05-12T10:00:00.000Z",
                "message": {"role": "user", "content": text, "timestamp": 1778580000000 + index},
            }
        )
        parent = entry_id
    blob = {
        "version": 3,
        "entries": entries,
        "leafId": parent,
        "metadata": {},
        "createdAt": "x",
        "updatedAt": "y",
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(blob, indent=2, ensure_ascii=False), encoding="utf-8")
    assert path.stat().st_size > 4 * 65536
    import_file(store, "flue", path, session_id="big")
    out = tmp_path / "out.json"
    export_file(store, "flue", "big", out)
    assert parsed(out) == blob


def test_native_session_exports_as_v3() -> None:
    data = SessionData(
        entries=[
            Entry("a", None, "message", "2026-01-01T00:00:00.000Z", {"message": {"role": "user"}})
        ],
        leaf_id="a",
        metadata={"k": 1},
    )
    out = io.BytesIO()
    write_session("flue", data, out)
    blob = json.loads(out.getvalue())
    assert blob == {
        "version": 3,
        "entries": [
            {
                "type": "message",
                "id": "a",
                "parentId": None,
                "timestamp": "2026-01-01T00:00:00.000Z",
                "message": {"role": "user"},
            }
        ],
        "leafId": "a",
        "metadata": {"k": 1},
        "createdAt": None,
        "updatedAt": None,
    }
    again = read_session("flue", io.BytesIO(out.getvalue()))
    assert again.entries == [
        Entry("a", None, "message", "2026-01-01T00:00:00.000Z", again.entries[0].payload)
    ]
    assert again.leaf_id == "a"


def test_bad_element_names_its_line(store: Store, tmp_path: Path) -> None:
    text = V8.read_text(encoding="utf-8").replace('"id": "1e2d3c4b"', '"id": 7', 1)
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(MalformedLineError) as caught:
        import_file(store, "flue", bad, session_id="s")
    assert caught.value.line == 9
    assert store.load("s") is None


def test_skip_bad_skips_an_element(store: Store, tmp_path: Path) -> None:
    blob = parsed(V3)
    blob["entries"].insert(1, {"type": "message", "parentId": None})  # no id
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(blob))
    result = import_file(store, "flue", bad, session_id="s", skip_bad=True)
    assert (result.skipped_bad, result.entries) == (1, 4)
    assert result.bad_lines == (1,)


@pytest.mark.parametrize(
    "text",
    [
        '{"version":3,"entries":[',
        '{"version":3}',
        "[1]",
        '{"entries":[],"leafId":NaN}',
        '{"entries":[]} x',
    ],
)
def test_broken_documents_raise(store: Store, tmp_path: Path, text: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(MalformedLineError):
        import_file(store, "flue", bad, session_id="s", skip_bad=True)
    assert store.load("s") is None


def test_leaf_must_be_an_entry(store: Store, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"entries":[],"leafId":"nope","metadata":{}}')
    with pytest.raises(MalformedLineError):
        import_file(store, "flue", bad, session_id="s")
    assert store.load("s") is None


def test_moved_leaf_exports(store: Store, tmp_path: Path) -> None:
    import_file(store, "flue", V3, session_id="s")
    store.save_delta("s", SessionDelta(leaf_id="d4e5f6a7"))
    out = tmp_path / "out.json"
    export_file(store, "flue", "s", out)
    assert parsed(out)["leafId"] == "d4e5f6a7"


_CHUNK = 1 << 16  # the reader's read size
_NUMBERS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda sign, whole, fraction, marker, exponent: (
            f"{sign}{whole}{fraction}{marker}{exponent}"
        ),
        st.sampled_from(["", "-"]),
        st.integers(min_value=0, max_value=10**6).map(str),
        st.sampled_from(["", ".5", ".25", ".0001"]),
        st.sampled_from(["e", "E", "e-", "e+", "E-"]),
        st.integers(min_value=0, max_value=300).map(str),
    ),
)


@settings(max_examples=300, deadline=None)
@given(number=_NUMBERS, data=st.data(), last=st.booleans())
@example(number="12.5", data=None, last=False)
@example(number="1e5", data=None, last=False)
@example(number="1.5e-3", data=None, last=True)
@example(number="-7.25", data=None, last=True)
def test_a_number_split_by_the_read_boundary_is_read_whole(
    number: str, data: st.DataObject | None, last: bool
) -> None:
    """A top-level number whose first `cut` characters end the first read chunk.

    `data=None` (the explicit examples) tries every split position.
    """
    cuts = range(1, len(number) + 1) if data is None else [data.draw(st.integers(1, len(number)))]
    # The number is followed by another field, or ends the document.
    head = '{"entries":[],"pad":"' if last else '{"version":3,"pad":"'
    key, tail = '","n":', "}" if last else ',"entries":[]}'
    for cut in cuts:
        pad = _CHUNK - len(head) - len(key) - cut
        document = head + "x" * pad + key + number + tail
        assert document.encode()[_CHUNK - cut : _CHUNK].decode() == number[:cut]
        read = read_session("flue", io.BytesIO(document.encode()))
        assert read.metadata["flue.session"]["n"] == json.loads(document)["n"]
