"""Malformed lines, skip_bad, batching, atomic exports: shared by every format."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from eventlog import IdConflictError, InvalidInputError, SessionDelta, SessionNotFoundError, Store
from eventlog.formats import FORMATS, MalformedLineError, export_file, import_file
from eventlog.formats._export import atomic_output

from .helpers import FIXTURES, lines_of

LINE_FORMATS = {
    "pi": FIXTURES / "pi_v3.jsonl",
    "claude-code": FIXTURES / "claude_code.jsonl",
    "codex": FIXTURES / "codex_rollout.jsonl",
}


def _with_bad_line(tmp_path: Path, source: Path, at: int, bad: bytes) -> Path:
    lines = lines_of(source)
    lines.insert(at - 1, bad)
    path = tmp_path / source.name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


@pytest.mark.parametrize("format", sorted(LINE_FORMATS))
@pytest.mark.parametrize("bad", [b'{"type": "message", "id": ', b"[1, 2]", b'{"no_type": 1}'])
def test_malformed_line_names_file_and_line_and_imports_nothing(
    store: Store, tmp_path: Path, format: str, bad: bytes
) -> None:
    path = _with_bad_line(tmp_path, LINE_FORMATS[format], 5, bad)
    with pytest.raises(MalformedLineError) as caught:
        import_file(store, format, path, session_id="s", batch_size=2)
    error = caught.value
    assert (error.path, error.line) == (str(path), 5)
    assert f"{path}:5" in str(error)
    assert isinstance(error, InvalidInputError)
    assert store.load("s") is None
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.path, copy.line, str(copy)) == (error.path, error.line, str(error))


@pytest.mark.parametrize("format", sorted(LINE_FORMATS))
def test_skip_bad_skips_and_counts(store: Store, tmp_path: Path, format: str) -> None:
    path = _with_bad_line(tmp_path, LINE_FORMATS[format], 5, b"not json")
    lines = lines_of(path)
    lines.insert(8, b'{"truncated": ')
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = import_file(store, format, path, session_id="s", skip_bad=True)
    assert result.skipped_bad == 2
    assert result.bad_lines == (5, 9)
    data = store.load("s")
    assert data is not None
    header_lines = 1 if format == "pi" else 0
    assert len(data.entries) == result.entries == len(lines) - 2 - header_lines


def test_malformed_line_leaves_an_existing_session_untouched(store: Store, tmp_path: Path) -> None:
    import_file(store, "claude-code", LINE_FORMATS["claude-code"], session_id="s")
    before = store.load("s")
    grown = [
        *lines_of(LINE_FORMATS["claude-code"]),
        b'{"type":"user","uuid":"new-1","parentUuid":null}',
        b"{oops",
    ]
    path = tmp_path / "grown.jsonl"
    path.write_bytes(b"\n".join(grown) + b"\n")
    with pytest.raises(MalformedLineError) as caught:
        import_file(store, "claude-code", path, session_id="s", batch_size=1)
    assert caught.value.line == 15
    after = store.load("s")
    assert after is not None and before is not None
    assert after == before and after.version == before.version


def test_appended_lines_import_on_top(store: Store, tmp_path: Path) -> None:
    import_file(store, "claude-code", LINE_FORMATS["claude-code"], session_id="s")
    grown = [
        *lines_of(LINE_FORMATS["claude-code"]),
        b'{"type":"user","uuid":"new-1","parentUuid":null}',
    ]
    path = tmp_path / "grown.jsonl"
    path.write_bytes(b"\n".join(grown) + b"\n")
    result = import_file(store, "claude-code", path, session_id="s")
    assert (result.appended, result.already_stored, result.leaf_id) == (1, 13, "new-1")


def test_conflicting_content_is_refused_before_any_write(store: Store, tmp_path: Path) -> None:
    import_file(store, "pi", LINE_FORMATS["pi"], session_id="s")
    before = store.load("s")
    lines = lines_of(LINE_FORMATS["pi"])
    lines[-1] = lines[-1].replace(b'"x":1e21', b'"x":2')
    lines.append(b'{"type":"custom","id":"zz","parentId":null}')
    path = tmp_path / "changed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(IdConflictError) as caught:
        import_file(store, "pi", path, session_id="s")
    assert caught.value.where == f"{path}:13"
    assert store.load("s") == before


def test_batches_write_one_version_each(store: Store) -> None:
    result = import_file(store, "codex", LINE_FORMATS["codex"], session_id="s", batch_size=5)
    # 12 entries in batches of 5, then the leaf and metadata.
    assert result.version == 4
    assert store.load("s", at_version=1) is not None
    data = store.load("s")
    assert data is not None and len(data.entries) == 12


def test_oversized_entry_is_a_malformed_line(tmp_path: Path) -> None:
    import eventlog

    with eventlog.connect("memory://", max_entry_bytes=400) as small:
        with pytest.raises(MalformedLineError) as caught:
            import_file(small, "pi", LINE_FORMATS["pi"], session_id="s")
        assert caught.value.line == 5
        assert small.load("s") is None


def test_unknown_format_and_bad_batch_size(store: Store, tmp_path: Path) -> None:
    assert FORMATS == ("flue", "flue-stream", "pi", "claude-code", "codex", "opencode", "jsonl")
    with pytest.raises(InvalidInputError):
        import_file(store, "opencod", LINE_FORMATS["pi"])
    with pytest.raises(InvalidInputError, match="import_opencode"):
        import_file(store, "opencode", LINE_FORMATS["pi"])
    with pytest.raises(InvalidInputError):
        import_file(store, "pi", LINE_FORMATS["pi"], batch_size=0)


@pytest.mark.parametrize("format", ["flue", "pi", "claude-code", "jsonl"])
def test_export_of_a_missing_session_writes_no_file(
    store: Store, tmp_path: Path, format: str
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(SessionNotFoundError):
        export_file(store, format, "nope", folder / "out")
    assert list(folder.iterdir()) == []


def test_failed_rename_leaves_no_temporary_file(store: Store, tmp_path: Path) -> None:
    import_file(store, "pi", LINE_FORMATS["pi"], session_id="s")
    folder = tmp_path / "exports"
    target = folder / "taken"
    target.mkdir(parents=True)  # os.replace onto a directory fails after the file was written
    with pytest.raises(OSError):
        export_file(store, "pi", "s", target)
    assert [path.name for path in folder.iterdir()] == ["taken"]
    assert list(target.iterdir()) == []


def test_failure_while_writing_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(RuntimeError), atomic_output(target) as stream:
        stream.write(b"half a fi")
        raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old\n"
    assert [path.name for path in tmp_path.iterdir()] == ["out.jsonl"]


def test_export_replaces_an_existing_file_whole(store: Store, tmp_path: Path) -> None:
    import_file(store, "pi", LINE_FORMATS["pi"], session_id="s")
    store.save_delta("s", SessionDelta(leaf_id="a1b2c3d4"))
    folder = tmp_path / "exports"
    folder.mkdir()
    target = folder / "out.jsonl"
    target.write_bytes(b"old\n")
    export_file(store, "pi", "s", target)
    assert sorted(lines_of(target)) == sorted(lines_of(LINE_FORMATS["pi"]))
    assert [path.name for path in folder.iterdir()] == ["out.jsonl"]
