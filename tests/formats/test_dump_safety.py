"""A jsonl restore checks the whole dump before writing, and neither it nor a dump loses data."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from conftest import Backend

import eventlog
from eventlog import (
    ConcurrencyError,
    Entry,
    SessionData,
    SessionDelta,
    SessionNotFoundError,
    StoreUnavailableError,
)
from eventlog.formats import MalformedLineError, dump, export_file, import_file, read_session


class CountsWrites:
    """Passes every call through and counts the writes; `hook(n)` runs before each, after `n`."""

    def __init__(self, inner: eventlog.Store, hook: Any = None) -> None:
        self.inner, self.hook, self.writes = inner, hook, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _before_write(self) -> None:
        if self.writes >= 100:  # a restore that writes placeholder versions without end
            raise RuntimeError("more than 100 writes")
        if self.hook is not None:
            self.hook(self.writes)
        self.writes += 1

    def save_delta(self, session_id: str, delta: SessionDelta, /, **options: Any) -> Any:
        self._before_write()
        return self.inner.save_delta(session_id, delta, **options)

    def save(self, session_id: str, data: SessionData, /, **options: Any) -> Any:
        self._before_write()
        return self.inner.save(session_id, data, **options)


def _two_version_dump() -> io.BytesIO:
    with eventlog.connect("memory://") as source:
        source.save_delta("S", SessionDelta([Entry("a")]))
        source.save_delta("S", SessionDelta([Entry("b")]))
        out = io.BytesIO()
        dump.dump(source, "S", out)
    out.seek(0)
    return out


# --- defect 1: the clean-up of a failed restore ------------------------------------------------


def test_failed_restore_keeps_other_writers_entries(
    backend: Backend, other_client: eventlog.Store
) -> None:
    def other_writes(writes: int) -> None:
        if writes == 1:
            other_client.save_delta("T", SessionDelta([Entry("other-client")]))

    with pytest.raises(ConcurrencyError):
        dump.restore(
            CountsWrites(backend.store, other_writes),
            _two_version_dump(),
            path="dump.jsonl",
            session_id="T",
        )
    data = backend.store.load("T")
    assert data is not None
    assert "other-client" in [entry.id for entry in data.entries]


def test_failed_restore_is_deleted_again(backend: Backend) -> None:
    def outage(writes: int) -> None:
        if writes == 1:
            raise StoreUnavailableError("the store went away")

    with pytest.raises(StoreUnavailableError):
        dump.restore(
            CountsWrites(backend.store, outage),
            _two_version_dump(),
            path="dump.jsonl",
            session_id="T",
        )
    assert backend.store.load("T") is None


# --- defects 6 and 26: the header is checked against the body before any write ---------------


@pytest.mark.parametrize(
    "lines",
    [
        # 90 bytes that claimed 10**8 versions wrote placeholder versions for days.
        ['{"eventlog_dump":1,"session_id":"dh","version":100000000,"first_version":100000000}'],
        ['{"eventlog_dump":1,"session_id":"dh","version":100000000,"first_version":1}'],
        ['{"eventlog_dump":1,"session_id":"dz","version":0,"first_version":1}'],
        ['{"eventlog_dump":1,"session_id":"dz","version":0,"first_version":0}'],
        ['{"eventlog_dump":1,"session_id":"dz","version":3,"first_version":4}'],
        ['{"eventlog_dump":1,"session_id":"dz","version":-1,"first_version":-5}'],
        [
            '{"eventlog_dump":1,"session_id":"dh","version":9,"first_version":9}',
            '{"v":9,"mode":"snapshot","leaf_id":null,"removed":[],"entries":0}',
            '{"v":10,"mode":"delta","leaf_id":null,"removed":[],"entries":0}',
        ],
        [
            '{"eventlog_dump":1,"session_id":"dh","version":5000,"first_version":5000}',
            '{"v":4999,"mode":"snapshot","leaf_id":null,"removed":[],"entries":0}',
        ],
    ],
)
def test_dump_whose_header_does_not_match_its_body_writes_nothing(
    store: eventlog.Store, tmp_path: Path, lines: list[str]
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n")
    counting = CountsWrites(store)
    with pytest.raises(MalformedLineError):
        import_file(counting, "jsonl", path, session_id="target")
    assert counting.writes == 0
    assert store.load("target") is None


def test_dump_with_a_bad_last_line_writes_nothing(store: eventlog.Store, tmp_path: Path) -> None:
    with eventlog.connect("memory://") as source:
        for name in "abcd":
            source.save_delta("S", SessionDelta([Entry(name)]))
        out = tmp_path / "s.jsonl"
        export_file(source, "jsonl", "S", out)
    lines = out.read_bytes().splitlines()
    lines[-1] = b'{"id": 5}'
    out.write_bytes(b"\n".join(lines) + b"\n")
    counting = CountsWrites(store)
    with pytest.raises(MalformedLineError) as caught:
        import_file(counting, "jsonl", out)
    assert caught.value.line == len(lines)
    assert counting.writes == 0
    assert store.load("S") is None


def test_dump_with_an_invalid_payload_writes_nothing(store: eventlog.Store, tmp_path: Path) -> None:
    lines = [
        '{"eventlog_dump":1,"session_id":"p","version":2,"first_version":1}',
        '{"v":1,"mode":"snapshot","leaf_id":null,"removed":[],"entries":1}',
        '{"id":"a","parent_id":null,"kind":"m","timestamp":null,"payload":{}}',
        '{"v":2,"mode":"delta","leaf_id":null,"removed":[],"entries":1}',
        '{"id":"b","parent_id":null,"kind":"m","timestamp":null,"payload":{"x":1e400}}',
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    counting = CountsWrites(store)
    with pytest.raises(eventlog.InvalidInputError):
        import_file(counting, "jsonl", path)
    assert counting.writes == 0
    assert store.load("p") is None


def test_dump_of_version_zero_is_refused_by_read_session() -> None:
    stream = io.BytesIO(b'{"eventlog_dump":1,"session_id":"dz","version":0,"first_version":1}\n')
    with pytest.raises(MalformedLineError):
        read_session("jsonl", stream)


# --- defect 22: a dump of a session deleted or replaced while it runs -------------------------


class DeletedDuringDump:
    """Another client deletes (and maybe re-creates) the session at the dump's n-th load."""

    def __init__(self, inner: eventlog.Store, at_load: int, *, recreate: int = 0) -> None:
        self.inner, self.at_load, self.recreate, self.loads = inner, at_load, recreate, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def load(self, session_id: str, /, **options: Any) -> Any:
        self.loads += 1
        if self.loads == self.at_load:
            self.inner.delete(session_id)
            for number in range(self.recreate):
                self.inner.save_delta(session_id, SessionDelta([Entry(f"new{number}")]))
        return self.inner.load(session_id, **options)


@pytest.mark.parametrize("at_load", [2, 3, 4])
@pytest.mark.parametrize("recreate", [0, 1, 6])
def test_dump_of_a_session_deleted_meanwhile_raises_not_found(
    store: eventlog.Store, tmp_path: Path, at_load: int, recreate: int
) -> None:
    for number in range(4):
        store.save_delta("S", SessionDelta([Entry(f"e{number}")]))
    folder = tmp_path / "exports"
    folder.mkdir()
    with pytest.raises(SessionNotFoundError):
        export_file(
            DeletedDuringDump(store, at_load, recreate=recreate), "jsonl", "S", folder / "out"
        )
    assert list(folder.iterdir()) == []


def _purged_dump(first_version: int) -> bytes:
    """A well-formed dump whose history before `first_version` was purged."""
    header = (
        f'{{"eventlog_dump":1,"session_id":"P","version":{first_version},'
        f'"first_version":{first_version}}}\n'
    )
    version = f'{{"v":{first_version},"mode":"snapshot","leaf_id":"a","removed":[],"entries":1}}\n'
    entry = '{"id":"a","parent_id":null,"kind":"message","timestamp":null,"payload":{}}\n'
    return (header + version + entry).encode()


def test_dump_claiming_more_purged_versions_than_allowed_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(_purged_dump(10**8))
    with eventlog.connect("memory://") as store:
        counted = CountsWrites(store)
        with pytest.raises(eventlog.InvalidInputError, match="placeholder versions"):
            import_file(counted, "jsonl", path)  # type: ignore[arg-type]
        assert counted.writes == 0
        assert store.load("P") is None
        with pytest.raises(eventlog.InvalidInputError), path.open("rb") as stream:
            read_session("jsonl", stream)


def test_purged_versions_up_to_the_limit_are_restored(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(_purged_dump(4))
    with eventlog.connect("memory://") as store:
        with pytest.raises(eventlog.InvalidInputError):
            import_file(store, "jsonl", path, max_purged_versions=2)
        assert store.load("P") is None
        result = import_file(store, "jsonl", path, max_purged_versions=3)
        assert result.version == 4
        with pytest.raises(eventlog.HistoryPurgedError):
            store.load("P", at_version=3)
        loaded = store.load("P")
        assert loaded is not None and [e.id for e in loaded.entries] == ["a"]
