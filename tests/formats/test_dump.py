"""eventlog's JSONL dump: every kept version restored, tombstones and purges included."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import eventlog
from eventlog import (
    Entry,
    HistoryPurgedError,
    RawJSON,
    SessionData,
    SessionDelta,
    SessionExistsError,
    Store,
)
from eventlog.formats import (
    MalformedLineError,
    export_file,
    import_file,
    read_session,
    write_session,
)


def _entry(entry_id: str, parent: str | None, text: str = "hi") -> Entry:
    return Entry(entry_id, parent, "message", "2026-01-01T00:00:00Z", {"text": text, "n": -0.0})


def build_history(store: Store, sid: str = "s") -> int:
    """A session whose versions use every kind of change; returns its version."""
    store.save_delta(sid, SessionDelta([_entry("a", None), _entry("b", "a")], leaf_id="b"))
    store.save_delta(sid, SessionDelta([_entry("c", "b")], leaf_id="c", metadata={"t": 1}))
    store.save_delta(sid, SessionDelta(removed_entry_ids=["c"], leaf_id="b"))  # tombstone
    raw = RawJSON(b'{ "pretty" : [1, 2],\n  "x": "\\u0000" }')  # whitespace and a line break
    store.save_delta(sid, SessionDelta([Entry("d", "b", "custom", None, raw)], leaf_id="d"))
    current = store.load(sid)
    assert current is not None
    # A snapshot save: revive "c", change "a" (supersede), reorder.
    changed_a = _entry("a", None, "changed")
    store.save(
        sid,
        SessionData(
            entries=[_entry("b", "a"), changed_a, _entry("c", "b"), current.entries[-1]],
            leaf_id="c",
            metadata={"t": 2},
        ),
    )
    store.save_delta(sid, SessionDelta(leaf_id="a"))  # leaf only
    store.save_delta(sid, SessionDelta(metadata={"t": 3, "k": [None]}))  # metadata only
    final = store.load(sid)
    assert final is not None
    return final.version


def _all_versions(store: Store, sid: str, last: int) -> dict[int, SessionData | str]:
    seen: dict[int, SessionData | str] = {}
    for version in range(1, last + 1):
        try:
            seen[version] = store.load(sid, at_version=version, raw=True)  # type: ignore[assignment]
        except HistoryPurgedError:
            seen[version] = "purged"
    return seen


def _same(left: dict[int, SessionData | str], right: dict[int, SessionData | str]) -> None:
    assert left.keys() == right.keys()
    for version in left:
        mine, theirs = left[version], right[version]
        assert mine == theirs, version
        if isinstance(mine, SessionData) and isinstance(theirs, SessionData):
            # Raw bytes too, not just equal dicts.
            assert [bytes(e.payload) for e in mine.entries] == [
                bytes(e.payload) for e in theirs.entries
            ]  # type: ignore[arg-type]
            assert bytes(mine.metadata) == bytes(theirs.metadata)  # type: ignore[arg-type]


@pytest.mark.parametrize("target_url", ["memory://", "sqlite"])
def test_restore_reproduces_every_version(store: Store, tmp_path: Path, target_url: str) -> None:
    last = build_history(store)
    out = tmp_path / "s.jsonl"
    export_file(store, "jsonl", "s", out)
    url = f"sqlite:///{tmp_path / 'target.db'}" if target_url == "sqlite" else target_url
    with eventlog.connect(url) as target:
        result = import_file(target, "jsonl", out)
        assert result.session_id == "s"
        assert result.version == last
        _same(_all_versions(store, "s", last), _all_versions(target, "s", last))
        assert target.load("s") == store.load("s")


def test_restore_after_purge_keeps_purged_versions_purged(store: Store, tmp_path: Path) -> None:
    build_history(store)
    store.purge("s")
    store.save_delta("s", SessionDelta([_entry("e", "a")], leaf_id="e"))
    last = build_history_tail(store)
    out = tmp_path / "s.jsonl"
    export_file(store, "jsonl", "s", out)
    with eventlog.connect("memory://") as target:
        import_file(target, "jsonl", out, session_id="copy")
        expected = _all_versions(store, "s", last)
        assert list(expected.values()).count("purged") == 6
        _same(expected, _all_versions(target, "copy", last))


def build_history_tail(store: Store) -> int:
    store.save_delta("s", SessionDelta(removed_entry_ids=["e"], leaf_id="a"))
    data = store.load("s")
    assert data is not None
    return data.version


def test_dump_lines_are_deltas_where_possible(store: Store, tmp_path: Path) -> None:
    build_history(store)
    out = tmp_path / "s.jsonl"
    export_file(store, "jsonl", "s", out)
    import json

    modes = [
        json.loads(line)["mode"] for line in out.read_bytes().splitlines() if b'"mode"' in line
    ]
    assert modes == ["snapshot", "delta", "delta", "delta", "snapshot", "delta", "delta"]


def test_restore_into_an_existing_session_is_refused(store: Store, tmp_path: Path) -> None:
    build_history(store)
    out = tmp_path / "s.jsonl"
    export_file(store, "jsonl", "s", out)
    before = store.load("s")
    with pytest.raises(SessionExistsError):
        import_file(store, "jsonl", out)
    assert store.load("s") == before


def test_truncated_dump_restores_nothing(store: Store, tmp_path: Path) -> None:
    build_history(store)
    out = tmp_path / "s.jsonl"
    export_file(store, "jsonl", "s", out)
    lines = out.read_bytes().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"\n".join(lines[:-2]) + b"\n")
    with eventlog.connect("memory://") as target:
        with pytest.raises(MalformedLineError) as caught:
            import_file(target, "jsonl", cut)
        assert caught.value.path == str(cut)
        assert target.load("s") is None


def test_corrupt_entry_line_names_its_line(store: Store, tmp_path: Path) -> None:
    build_history(store)
    out = tmp_path / "s.jsonl"
    export_file(store, "jsonl", "s", out)
    lines = out.read_bytes().splitlines()
    lines[3] = b'{"id": 5}'
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    with eventlog.connect("memory://") as target:
        with pytest.raises(MalformedLineError) as caught:
            import_file(target, "jsonl", bad)
        assert caught.value.line == 4
        assert target.load("s") is None
        with pytest.raises(eventlog.InvalidInputError):
            import_file(target, "jsonl", out, skip_bad=True)


def test_single_snapshot_write_and_read() -> None:
    data = SessionData(
        entries=[_entry("a", None), _entry("b", "a")], leaf_id="b", metadata={"m": 1}
    )
    out = io.BytesIO()
    write_session("jsonl", data, out, session_id="x")
    assert read_session("jsonl", io.BytesIO(out.getvalue())) == data


@pytest.mark.parametrize("raw", [False, True])
def test_read_session_of_a_dump_with_history_is_its_latest_version(
    tmp_path: Path, raw: bool
) -> None:
    out = tmp_path / "s.jsonl"
    with eventlog.connect("memory://") as store:
        build_history(store)
        export_file(store, "jsonl", "s", out)
        latest = store.load("s", raw=raw)
    assert latest is not None
    with out.open("rb") as stream:
        read = read_session("jsonl", stream, raw=raw)
    assert (read.entries, read.leaf_id, read.metadata) == (
        latest.entries,
        latest.leaf_id,
        latest.metadata,
    )
