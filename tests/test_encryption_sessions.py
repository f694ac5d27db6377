"""Sealed and plain sessions side by side (DESIGN.md section 8, issue #19).

A database may hold both: a keyring store seals the sessions it creates and
keeps plain ones plain; a plain session becomes sealed through a fork by a
keyring store (its own data key, every payload sealed again); `export` writes
plaintext from a keyring store only when asked, and says so.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pgserver
import pytest
from click.testing import CliRunner

import eventlog
from eventlog import DecryptionError, Entry, Keyring, SessionDelta, Store
from eventlog.cli.commands import cli
from eventlog.memory import MemoryStore


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _data_key(path: Path, session_id: str) -> bytes | None:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT data_key FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
    return None if row[0] is None else bytes(row[0])


def _payloads(path: Path, session_id: str) -> list[bytes]:
    with sqlite3.connect(path) as conn:
        return [
            bytes(row[0])
            for row in conn.execute(
                "SELECT payload FROM entries WHERE session_id = ? ORDER BY seq", (session_id,)
            )
        ]


def _turn(store: Store, session_id: str, n: int) -> None:
    parent = f"e{n - 1}" if n else None
    store.save_delta(
        session_id,
        SessionDelta(
            [Entry(f"e{n}", parent, "message", None, {"text": f"turn {n} of {session_id}"})],
            leaf_id=f"e{n}",
            metadata={"turns": n + 1},
        ),
    )


@pytest.fixture
def ring() -> Keyring:
    return Keyring({"k1": os.urandom(32)}, active="k1")


def test_a_database_holds_plain_and_sealed_sessions(tmp_path: Path, ring: Keyring) -> None:
    path = tmp_path / "mixed.db"
    with eventlog.connect(_url(path)) as plain:
        _turn(plain, "old", 0)
    with eventlog.connect(_url(path), keyring=ring) as sealed:
        _turn(sealed, "new", 0)
        _turn(sealed, "old", 1)  # an existing plain session stays plain
        assert [e.payload["text"] for e in sealed.path("old")] == [
            "turn 0 of old",
            "turn 1 of old",
        ]
        assert sealed.load("new") is not None
    assert _data_key(path, "old") is None
    assert all(p.startswith(b"{") for p in _payloads(path, "old"))
    assert _data_key(path, "new") is not None
    assert all(p.startswith(b"\x00") for p in _payloads(path, "new"))
    with eventlog.connect(_url(path)) as plain:
        assert plain.load("old") is not None
        with pytest.raises(DecryptionError):
            plain.load("new")
        assert {i.session_id for i in plain.list_sessions().items} == {"old", "new"}


def test_a_plain_session_becomes_sealed_through_a_fork(tmp_path: Path, ring: Keyring) -> None:
    path = tmp_path / "mixed.db"
    with eventlog.connect(_url(path)) as plain:
        for n in range(3):
            _turn(plain, "chat", n)
        before = plain.load("chat")
    with eventlog.connect(_url(path), keyring=ring) as sealed:
        sealed.fork("chat", "chat-sealed")
        assert sealed.delete("chat")
        after = sealed.load("chat-sealed")
    assert before is not None and after is not None
    assert after.entries == before.entries and after.metadata == before.metadata
    assert _data_key(path, "chat-sealed") is not None
    assert all(p.startswith(b"\x00") for p in _payloads(path, "chat-sealed"))


def test_a_fork_of_a_sealed_session_gets_its_own_data_key(tmp_path: Path, ring: Keyring) -> None:
    path = tmp_path / "sealed.db"
    with eventlog.connect(_url(path), keyring=ring) as store:
        for n in range(3):
            _turn(store, "a", n)
        store.fork("a", "b", at_entry_id="e1")
        fork = store.load("b")
        assert fork is not None and [e.id for e in fork.entries] == ["e0", "e1"]
        # Retried content is still recognized in the fork (its own keyed digests).
        result = store.save_delta("b", SessionDelta([fork.entries[1]]))
        assert result.skipped == ("e1",)
    assert _data_key(path, "a") != _data_key(path, "b")
    assert not set(_payloads(path, "a")) & set(_payloads(path, "b"))
    with sqlite3.connect(path) as conn:  # a fork's ciphertext does not open in its source
        conn.execute(
            "UPDATE entries SET payload = (SELECT payload FROM entries WHERE session_id = 'b' "
            "AND entry_id = 'e0') WHERE session_id = 'a' AND entry_id = 'e0'"
        )
    with eventlog.connect(_url(path), keyring=ring) as store, pytest.raises(DecryptionError):
        store.load("a")


def test_export_writes_plaintext_only_when_asked_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "sealed.db"
    key = os.urandom(32)
    with eventlog.connect(_url(path), keyring=Keyring({"k": key}, active="k")) as store:
        _turn(store, "chat", 0)
    ring_file = tmp_path / "ring.json"
    ring_file.write_text(json.dumps({"active": "k", "keys": {"k": base64.b64encode(key).decode()}}))
    # jsonl would be a sealed dump (tests/security/test_encryption_dump.py); pi is plaintext.
    base = ["export", "--format", "pi", "chat", "--url", _url(path), "--keyring", str(ring_file)]
    refused = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "out.jsonl")])
    assert refused.exit_code != 0 and "--plaintext" in refused.output
    assert not (tmp_path / "out.jsonl").exists()
    asked = CliRunner().invoke(cli, [*base, "-o", str(tmp_path / "out.jsonl"), "--plaintext"])
    assert asked.exit_code == 0, asked.output
    assert "in plaintext (decrypted)" in asked.output
    assert "turn 0 of chat" in (tmp_path / "out.jsonl").read_text()


def test_rekey_seal_seals_a_plain_session_in_place(tmp_path: Path) -> None:
    path = tmp_path / "mixed.db"
    key = os.urandom(32)
    with eventlog.connect(_url(path)) as plain:
        for n in range(3):
            _turn(plain, "chat", n)
        plain.save_delta("chat", SessionDelta([], removed_entry_ids=["e2"], leaf_id="e1"))
        before = plain.load("chat")
    with eventlog.connect(_url(path), keyring=Keyring({"k": key}, active="k")) as store:
        _turn(store, "new", 0)
    ring_file = tmp_path / "ring.json"
    ring_file.write_text(json.dumps({"active": "k", "keys": {"k": base64.b64encode(key).decode()}}))
    args = ["rekey", "--seal", "--url", _url(path), "--keyring", str(ring_file)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "0 already under the active key" not in result.output
    assert "1 sealed; 0 plain" in result.output
    assert before is not None
    assert _data_key(path, "chat") is not None
    assert all(p.startswith(b"\x00") for p in _payloads(path, "chat"))
    with eventlog.connect(_url(path), keyring=Keyring({"k": key}, active="k")) as store:
        after = store.load("chat")
        assert after is not None
        assert (after.entries, after.leaf_id, after.metadata) == (
            before.entries,
            before.leaf_id,
            before.metadata,
        )
        assert after.version == before.version + 1
        # A reader at the old version folds the sealing change to the same session.
        folded = eventlog.fold_changes(
            store.changes("chat", after_version=before.version).items, start=before
        )
        assert folded.entries == before.entries
        with pytest.raises(eventlog.HistoryPurgedError):
            store.load("chat", at_version=1)
        _turn(store, "chat", 3)  # and it keeps working sealed
        reloaded = store.load("chat")
        assert reloaded is not None and [e.id for e in reloaded.entries] == ["e0", "e1", "e3"]
    with eventlog.connect(_url(path)) as plain, pytest.raises(DecryptionError):
        plain.load("chat")


def _seal_and_check(plain: Store, sealed: Store) -> None:
    for n in range(3):
        _turn(plain, "chat", n)
    before = plain.load("chat")
    assert sealed.rekey("chat", seal=True) == "sealed"
    assert sealed.rekey("chat", seal=True) == "current"
    after = sealed.load("chat")
    assert before is not None and after is not None
    assert after.entries == before.entries and after.metadata == before.metadata
    with pytest.raises(DecryptionError):
        plain.load("chat")


def test_rekey_seal_on_memory(ring: Keyring) -> None:
    plain = MemoryStore()
    _seal_and_check(plain, MemoryStore(keyring=ring, _database=plain._database))


@pytest.mark.postgres
def test_rekey_seal_on_postgres(ring: Keyring) -> None:
    pgserver.dsn_or_skip()
    url = pgserver.with_search_path(pgserver.server_dsn(), pgserver.make_schema("seal"))
    with eventlog.connect(url) as plain, eventlog.connect(url, keyring=ring) as sealed:
        _seal_and_check(plain, sealed)
