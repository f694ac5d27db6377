"""Stored bytes that are not a JSON object (bit rot, a manual edit, another tool).

Rows are edited behind the store's back: with a raw connection on SQLite and
PostgreSQL, by replacing the stored record on memory. Every read that decodes
them must raise `CorruptionError` naming the session and the entry, never a
msgspec error, and never with the stored text in its message.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
from conftest import Backend

import eventlog
from eventlog import CorruptionError, Entry, SessionDelta
from eventlog._connect import sqlite_path
from eventlog.formats import export_file

pytestmark = pytest.mark.fault

SID = "damaged"
SECRET = "PRIVATE-7d1e"
DAMAGED_PAYLOADS = {
    "truncated": b'{"x":',
    "binary": b"\x00\xff",
    "an array": b"[1]",
    "a string": b'"' + SECRET.encode() + b'"',
    "invalid UTF-8": b'{"a":"\xff' + SECRET.encode() + b'"}',
    "trailing text": b'{"a":1} ' + SECRET.encode(),
    "nested 5000 deep": b"[" * 5000 + b"]" * 5000,
    "empty": b"",
}


def _memory_sessions(backend: Backend) -> dict[str, Any]:
    inner: Any = getattr(backend.store, "inner", backend.store)
    sync = getattr(inner, "sync", inner)
    sessions: dict[str, Any] = sync._sessions
    return sessions


def _edit_sql(backend: Backend, statement: str, value: bytes) -> None:
    if backend.name.startswith("sqlite"):
        path = sqlite_path(backend.url)
        with sqlite3.connect(path) as conn:
            conn.execute(statement.replace("%s", "?"), (value, SID))
        conn.close()
    else:
        with psycopg.connect(backend.admin_url, autocommit=True) as pg:
            pg.execute(statement, (value, SID))  # type: ignore[arg-type]


def damage_payload(backend: Backend, entry_id: str, value: bytes) -> None:
    """Overwrite every stored record of one entry with `value`."""
    if backend.name.startswith("memory"):
        session = _memory_sessions(backend)[SID]
        session.records = [
            msgspec.structs.replace(r, payload=value) if r.entry_id == entry_id else r
            for r in session.records
        ]
        return
    _edit_sql(
        backend,
        f"UPDATE entries SET payload = %s WHERE session_id = %s AND entry_id = '{entry_id}'",
        value,
    )


def damage_metadata(backend: Backend, value: bytes) -> None:
    """Overwrite the session's metadata, current and of every version."""
    if backend.name.startswith("memory"):
        session = _memory_sessions(backend)[SID]
        session.state = msgspec.structs.replace(session.state, metadata=value)
        session.versions = {v: (leaf, value, at) for v, (leaf, _, at) in session.versions.items()}
        return
    _edit_sql(backend, "UPDATE sessions SET metadata = %s WHERE session_id = %s", value)
    _edit_sql(
        backend,
        "UPDATE session_versions SET metadata = %s WHERE session_id = %s AND metadata IS NOT NULL",
        value,
    )


def _seed(store: eventlog.Store) -> None:
    store.save_delta(
        SID,
        SessionDelta(
            [Entry("a"), Entry("b", "a", payload={"x": SECRET})], leaf_id="b", metadata={"m": 1}
        ),
    )
    store.save_delta(SID, SessionDelta([Entry("c", "b")], leaf_id="c"))


def _reads(tmp_path: Path) -> dict[str, Callable[[eventlog.Store], object]]:
    return {
        "load": lambda s: s.load(SID),
        "load raw": lambda s: s.load(SID, raw=True),
        "load at version 1": lambda s: s.load(SID, at_version=1),
        "load raw at version 1": lambda s: s.load(SID, at_version=1, raw=True),
        "path": lambda s: s.path(SID),
        "fork": lambda s: s.fork(SID, "copy"),
        "fork at the damaged entry": lambda s: s.fork(SID, "copy", at_entry_id="b"),
        "entry": lambda s: s.entry(SID, "b"),
        "entry raw": lambda s: s.entry(SID, "b", raw=True),
        "scan": lambda s: s.scan(SID, id_prefix=""),
        "scan raw": lambda s: s.scan(SID, id_prefix="b", raw=True),
        "path limit": lambda s: s.path(SID, limit=2),
        "path limit to the damaged entry": lambda s: s.path(SID, leaf_id="b", limit=1),
    }


def _check_corruption(error: BaseException, entry_id: str | None, where: str) -> None:
    assert isinstance(error, CorruptionError), repr(error)
    assert error.session_id == SID
    assert error.entry_id == entry_id
    assert error.where == where
    for text in (str(error), repr(error), str(pickle.loads(pickle.dumps(error)))):
        assert SECRET not in text and "\\x" not in text


@pytest.mark.parametrize("damage", list(DAMAGED_PAYLOADS), ids=list(DAMAGED_PAYLOADS))
def test_damaged_payload_reads_raise_corruption_error(
    backend: Backend, tmp_path: Path, damage: str
) -> None:
    store = backend.store
    _seed(store)
    damage_payload(backend, "b", DAMAGED_PAYLOADS[damage])
    for name, read in _reads(tmp_path).items():
        with pytest.raises(Exception) as caught:
            read(store)
        assert caught.value.__cause__ is None and caught.value.__context__ is None, name
        _check_corruption(caught.value, "b", "payload")
    assert store.load("copy") is None  # a fork that found damage wrote nothing
    # Reads that do not decode the damaged bytes still work, and so do writes.
    assert [info.session_id for info in store.list_sessions().items] == [SID]
    assert [e.id for e in store.path(SID, leaf_id="a")] == ["a"]
    assert [e.id for e in store.path(SID, limit=1)] == ["c"]
    assert [e.id for e in store.scan(SID, id_prefix="c")] == ["c"]
    assert store.entry(SID, "a") == Entry("a")
    info = store.info(SID)
    assert info is not None and info.leaf_id == "c"
    store.save_delta(SID, SessionDelta([Entry("d", "c")], leaf_id="d"))


def test_damaged_metadata_reads_raise_corruption_error(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    _seed(store)
    damage_metadata(backend, b"\x00\xff" + SECRET.encode())
    for name in ("load", "load raw", "load at version 1", "load raw at version 1", "fork"):
        with pytest.raises(Exception) as caught:
            _reads(tmp_path)[name](store)
        _check_corruption(caught.value, None, "metadata")
    assert [e.id for e in store.path(SID)] == ["a", "b", "c"]


@pytest.mark.parametrize("format", ["jsonl", "pi", "flue"])
def test_export_of_a_damaged_session_raises_an_eventlog_error(
    backend: Backend, tmp_path: Path, format: str
) -> None:
    _seed(backend.store)
    damage_payload(backend, "b", DAMAGED_PAYLOADS["truncated"])
    with pytest.raises(CorruptionError):
        export_file(backend.store, format, SID, tmp_path / "out")


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("created_at", "yesterday"),
        ("updated_at", 2**62),
        ("version", "two"),
        ("next_seq", 1.5),
        ("metadata", "not a blob"),
    ],
)
def test_damaged_sqlite_session_row_raises_corruption_error(
    tmp_path: Path, column: str, value: object
) -> None:
    path = tmp_path / "d.db"
    with eventlog.connect(f"sqlite:///{path}") as store:
        _seed(store)
        with sqlite3.connect(path) as conn:
            conn.execute(f"UPDATE sessions SET {column} = ? WHERE session_id = ?", (value, SID))
        conn.close()
        for call in (
            lambda: store.load(SID),
            lambda: store.info(SID),
            lambda: store.list_sessions(),
            lambda: store.save_delta(SID, SessionDelta([Entry("z")])),
            lambda: store.fork(SID, "copy"),
        ):
            with pytest.raises(CorruptionError) as caught:
                call()
            assert caught.value.session_id == SID


@pytest.mark.parametrize("value", ['{"a":"é"}', "é", 5], ids=["JSON text", "text", "int"])
def test_sqlite_payload_of_another_type_raises_corruption_error(
    tmp_path: Path, value: object
) -> None:
    path = tmp_path / "d.db"
    with eventlog.connect(f"sqlite:///{path}") as store:
        _seed(store)
        with sqlite3.connect(path) as conn:
            # The column is a BLOB, but SQLite stores any type there.
            conn.execute(
                "UPDATE entries SET payload = ? WHERE session_id = ? AND entry_id = 'b'",
                (value, SID),
            )
        conn.close()
        for name, read in _reads(tmp_path).items():
            with pytest.raises(CorruptionError) as caught:
                read(store)
            assert (caught.value.session_id, caught.value.entry_id) == (SID, "b"), name
