"""An import lands whole or leaves the session as it was; it never loses what others wrote."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Backend

import eventlog
from eventlog import (
    ConcurrencyError,
    Entry,
    IdConflictError,
    InvalidInputError,
    InvalidLeafError,
    InvalidPayloadError,
    SessionData,
    SessionDelta,
    StoreUnavailableError,
)
from eventlog.formats import (
    FORMATS,
    ImportResult,
    MalformedLineError,
    _importer,
    import_file,
    read_session,
)


class Interleaved:
    """Passes every call through; runs `hook(n)` before each write, `n` writes having landed."""

    def __init__(self, inner: eventlog.Store, hook: Callable[[int], None]) -> None:
        self.inner, self.hook, self.writes = inner, hook, 0
        self.max_entry_bytes = getattr(inner, "max_entry_bytes", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def save_delta(self, session_id: str, delta: SessionDelta, /, **options: Any) -> Any:
        self.hook(self.writes)
        result = self.inner.save_delta(session_id, delta, **options)
        self.writes += 1
        return result


def _claude_code(tmp_path: Path, count: int, name: str = "c.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(f'{{"type":"user","uuid":"u{i}"}}\n' for i in range(count)))
    return path


def _import_during(
    store: eventlog.Store, hook: Callable[[int], None], path: Path, session_id: str, **options: Any
) -> ImportResult:
    """Import a Claude Code file into `store`, running `hook(n)` before each write."""
    return import_file(
        Interleaved(store, hook), "claude-code", path, session_id=session_id, **options
    )


def _snapshot(store: eventlog.Store, session_id: str) -> tuple[SessionData | None, int | None]:
    data = store.load(session_id, raw=True)
    return data, None if data is None else data.version


# --- a new session: a failed import removes only what it wrote ---------------------------------


def test_failed_import_keeps_other_writers_entries(
    backend: Backend, other_client: eventlog.Store, tmp_path: Path
) -> None:
    def other_writes(writes: int) -> None:
        if writes == 1:
            other_client.save_delta("S", SessionDelta([Entry("other-client-msg")]))

    with pytest.raises(ConcurrencyError):
        _import_during(backend.store, other_writes, _claude_code(tmp_path, 4), "S", batch_size=2)
    data = backend.store.load("S")
    assert data is not None
    assert "other-client-msg" in [entry.id for entry in data.entries]


def test_failed_import_into_a_new_session_is_deleted_again(
    backend: Backend, tmp_path: Path
) -> None:
    def outage(writes: int) -> None:
        if writes == 1:
            raise StoreUnavailableError("the store went away")

    with pytest.raises(StoreUnavailableError):
        _import_during(backend.store, outage, _claude_code(tmp_path, 4), "S", batch_size=2)
    assert backend.store.load("S") is None


def test_import_that_loses_the_creation_race_writes_on_top(
    backend: Backend, other_client: eventlog.Store, tmp_path: Path
) -> None:
    def other_creates(writes: int) -> None:
        if writes == 0:
            other_client.save_delta("S", SessionDelta([Entry("first")]))

    result = _import_during(
        backend.store, other_creates, _claude_code(tmp_path, 4), "S", batch_size=2
    )
    data = backend.store.load("S")
    assert data is not None
    assert [entry.id for entry in data.entries] == ["first", "u0", "u1", "u2", "u3"]
    assert result.appended == 4 and data.leaf_id == "u3"


# --- an existing session: every check before the first write ----------------------------------


def _existing(store: eventlog.Store) -> None:
    store.save_delta("A", SessionDelta([Entry("old", None, "message", None, {"t": 1})]))
    store.save_delta("A", SessionDelta(leaf_id="old", metadata={"kept": True}))


@pytest.mark.parametrize("writes", ["one", "batches"])
def test_flue_metadata_breaking_the_rules_leaves_the_session_as_it_was(
    store: eventlog.Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writes: str
) -> None:
    if writes == "batches":  # too large for one transaction: checked before the first batch
        monkeypatch.setattr(_importer, "_ONE_WRITE_BYTES", 0)
    _existing(store)
    before = _snapshot(store, "A")
    path = tmp_path / "a.json"
    path.write_text(
        '{"version":3,"entries":[{"type":"message","id":"n1","parentId":null},'
        '{"type":"message","id":"n2","parentId":"n1"}],"leafId":"n2","metadata":{"x":1e400}}'
    )
    with pytest.raises(InvalidInputError):
        import_file(store, "flue", path, session_id="A", batch_size=1)
    assert _snapshot(store, "A") == before


def test_tombstoned_id_with_other_content_is_refused_before_any_write(
    store: eventlog.Store, tmp_path: Path
) -> None:
    store.save_delta("B", SessionDelta([Entry("x", None, "m", None, {"v": "first"})], leaf_id="x"))
    store.save_delta("B", SessionDelta(removed_entry_ids=["x"], leaf_id=None))
    before = _snapshot(store, "B")
    lines = [
        '{"type":"session","version":3,"id":"B"}',
        *(f'{{"type":"m","id":"n{i}","parentId":null}}' for i in range(4)),
        '{"type":"m","id":"x","parentId":null,"v":"second"}',
    ]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(IdConflictError) as caught:
        import_file(store, "pi", path, batch_size=2)
    assert caught.value.entry_id == "x"
    assert caught.value.where == f"{path}:6"
    assert _snapshot(store, "B") == before


def test_leaf_that_would_not_be_live_is_refused_before_any_write(
    store: eventlog.Store, tmp_path: Path
) -> None:
    # The session removed "x"; the file ends on the same "x", which a delta never revives.
    line = '{"type":"m","id":"x","parentId":null}'
    store.save_delta(
        "L", SessionDelta([Entry("x", None, "m", None, eventlog.RawJSON(line.encode()))])
    )
    store.save_delta("L", SessionDelta(removed_entry_ids=["x"]))
    before = _snapshot(store, "L")
    path = tmp_path / "l.jsonl"
    header = '{"type":"session","version":3,"id":"L"}\n'
    path.write_text(header + '{"type":"m","id":"y","parentId":null}\n' + line)
    with pytest.raises(InvalidLeafError):
        import_file(store, "pi", path, batch_size=1)
    assert _snapshot(store, "L") == before


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_pi_header_breaking_the_metadata_rules_writes_nothing(
    store: eventlog.Store, tmp_path: Path
) -> None:
    # The header itself is 256 deep (allowed JSON); as metadata["pi.header"] it is 257.
    path = tmp_path / "h.jsonl"
    header = '{"type":"session","id":"H","x":' + _deep(255) + "}"
    path.write_text(header + "\n" + '{"type":"m","id":"a","parentId":null}\n')
    with pytest.raises(InvalidInputError):
        import_file(store, "pi", path, batch_size=1)
    assert store.load("H") is None
    _existing(store)
    before = _snapshot(store, "A")
    with pytest.raises(InvalidInputError):
        import_file(store, "pi", path, session_id="A", batch_size=1)
    assert _snapshot(store, "A") == before


def test_codex_session_meta_breaking_the_metadata_rules_writes_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    # Merged with the stored metadata, the session_meta is over the store's size limit.
    limit = 4096
    url = "memory://" if backend.name.startswith("memory") else backend.url
    with eventlog.connect(url, max_entry_bytes=limit) as small:
        small.save_delta("C", SessionDelta([Entry("old")], metadata={"big": "x" * (limit - 200)}))
        before = _snapshot(small, "C")
        path = tmp_path / "rollout.jsonl"
        meta = '{"id":"C","cwd":"' + "d" * 400 + '"}'
        path.write_text(
            f'{{"type":"session_meta","payload":{meta}}}\n'
            '{"type":"response_item","payload":{"type":"message"}}\n'
        )
        with pytest.raises(InvalidPayloadError):
            import_file(small, "codex", path, batch_size=1)
        assert _snapshot(small, "C") == before


def test_import_into_an_existing_session_is_one_write(
    store: eventlog.Store, tmp_path: Path
) -> None:
    _existing(store)
    result = import_file(store, "claude-code", _claude_code(tmp_path, 5), session_id="A")
    assert result.version == 3 and result.appended == 5
    data = store.load("A")
    assert data is not None and data.metadata == {"kept": True} and data.leaf_id == "u4"


def test_concurrent_write_during_an_existing_session_import_is_kept(
    backend: Backend, other_client: eventlog.Store, tmp_path: Path
) -> None:
    _existing(backend.store)

    def other_writes(writes: int) -> None:
        if writes == 0:
            other_client.save_delta("A", SessionDelta([Entry("other")]))

    _import_during(backend.store, other_writes, _claude_code(tmp_path, 3), "A")
    data = backend.store.load("A")
    assert data is not None
    assert [entry.id for entry in data.entries] == ["old", "other", "u0", "u1", "u2"]


def test_concurrent_conflicting_write_fails_the_import_without_writing(
    backend: Backend, other_client: eventlog.Store, tmp_path: Path
) -> None:
    _existing(backend.store)

    def other_writes(writes: int) -> None:
        if writes == 0:
            other_client.save_delta("A", SessionDelta([Entry("u1", kind="other")]))

    with pytest.raises(IdConflictError):
        _import_during(backend.store, other_writes, _claude_code(tmp_path, 3), "A")
    data = backend.store.load("A")
    assert data is not None
    assert [entry.id for entry in data.entries] == ["old", "u1"]


# --- an existing session too large for one write: checked first, then batches -----------------


@pytest.fixture
def batched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every import into an existing session too large for one transaction."""
    monkeypatch.setattr(_importer, "_ONE_WRITE_BYTES", 0)


@pytest.mark.usefixtures("batched")
def test_large_import_interrupted_by_another_writer_completes_when_run_again(
    backend: Backend, other_client: eventlog.Store, tmp_path: Path
) -> None:
    _existing(backend.store)

    def other_writes(writes: int) -> None:
        if writes == 1:
            other_client.save_delta("A", SessionDelta([Entry("other")]))

    path = _claude_code(tmp_path, 4)
    with pytest.raises(ConcurrencyError):
        _import_during(backend.store, other_writes, path, "A", batch_size=2)
    result = import_file(backend.store, "claude-code", path, session_id="A", batch_size=2)
    assert (result.appended, result.already_stored) == (2, 2)
    data = backend.store.load("A")
    assert data is not None
    assert [entry.id for entry in data.entries] == ["old", "u0", "u1", "other", "u2", "u3"]
    assert data.leaf_id == "u3" and data.metadata == {"kept": True}


# --- empty files -------------------------------------------------------------------------------


# opencode has no one-file import (a folder or database): `test_opencode.py` covers it.
@pytest.mark.parametrize("format", [name for name in FORMATS if name != "opencode"])
@pytest.mark.parametrize("content", [b"", b"\n  \n"])
def test_empty_file_is_refused_and_writes_nothing(
    store: eventlog.Store, tmp_path: Path, format: str, content: bytes
) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(content)
    with pytest.raises(MalformedLineError):
        import_file(store, format, path, session_id="E")
    assert store.load("E") is None
    _existing(store)
    before = _snapshot(store, "A")
    with pytest.raises(MalformedLineError):
        import_file(store, format, path, session_id="A")
    assert _snapshot(store, "A") == before
    with pytest.raises(MalformedLineError), path.open("rb") as stream:
        read_session(format, stream)


def test_format_that_only_compares_equal_to_a_name_is_refused(
    store: eventlog.Store, tmp_path: Path
) -> None:
    class LooksLikePi:
        def __eq__(self, other: object) -> bool:
            return other == "pi"

        def __hash__(self) -> int:
            return hash("pi")

    with pytest.raises(InvalidInputError):
        import_file(store, LooksLikePi(), _claude_code(tmp_path, 1))
