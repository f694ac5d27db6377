"""Keys over time (DESIGN.md section 8): rotation, `eventlog rekey`, deletes, GCM's limit.

- Rotation: with two key ids in the keyring every old row reads and new data
  keys are wrapped by the active one; after `eventlog rekey` the old key can
  leave the keyring and everything still reads.
- Delete removes the session's rows and its wrapped data key. A backup taken
  before still holds the wrapped key, so delete alone shreds nothing in backups;
  what does is destroying a wrapping key: with a key per tenant, dropping one
  tenant's key leaves that tenant's old backups unreadable and the others'
  readable. Both claims are tested here.
- Nonces: 1,000,000 seals under one data key repeat none, and the derived key
  changes every 2**31 seals (half of NIST's 2**32 limit for random 96-bit nonces).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import eventlog
from eventlog import DecryptionError, Entry, InvalidConfigError, Keyring, SessionDelta, Store
from eventlog._core.sealing import GENERATION_SEALS, SessionCipher
from eventlog.cli.commands import cli

from .encryption_helpers import connect_sqlite, raw_sqlite, sqlite_url, stored_key_id

SESSIONS = [f"s{n}" for n in range(20)]


def _write(store: Store, session_id: str) -> None:
    store.save_delta(
        session_id,
        SessionDelta(
            [Entry("e1", None, "message", None, {"text": f"hello {session_id}"})],
            leaf_id="e1",
            metadata={"title": session_id},
        ),
    )


def _all_read(store: Store, sessions: list[str]) -> None:
    for session_id in sessions:
        data = store.load(session_id)
        assert data is not None and data.entries[0].payload == {"text": f"hello {session_id}"}
        assert data.metadata == {"title": session_id}


def _keyring_file(path: Path, keys: dict[str, bytes], active: str) -> Path:
    encoded = {key_id: base64.b64encode(key).decode() for key_id, key in keys.items()}
    path.write_text(json.dumps({"active": active, "keys": encoded}))
    return path


def test_rotation_then_rekey_then_the_old_key_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    old, new = os.urandom(32), os.urandom(32)
    with connect_sqlite(path, Keyring({"old": old}, active="old")) as store:
        for session_id in SESSIONS[:10]:
            _write(store, session_id)
    # Two key ids: old rows read, new data keys are wrapped by the active key.
    both = Keyring({"old": old, "new": new}, active="new")
    with connect_sqlite(path, both) as store:
        for session_id in SESSIONS[10:]:
            _write(store, session_id)
        _all_read(store, SESSIONS)
    with raw_sqlite(path) as conn:
        assert [stored_key_id(conn, s) for s in SESSIONS] == ["old"] * 10 + ["new"] * 10
    # Without the old key, the old sessions do not read yet.
    only_new = Keyring({"new": new}, active="new")
    with connect_sqlite(path, only_new) as store, pytest.raises(DecryptionError):
        store.load(SESSIONS[0])
    ring_file = _keyring_file(tmp_path / "both.json", {"old": old, "new": new}, "new")
    result = CliRunner().invoke(
        cli, ["rekey", "--url", sqlite_url(path), "--keyring", str(ring_file)]
    )
    assert result.exit_code == 0, result.output
    assert "rekeyed 10 sessions; 10 already under the active key" in result.output
    with raw_sqlite(path) as conn:
        assert {stored_key_id(conn, s) for s in SESSIONS} == {"new"}
    # The old key is gone from the keyring: everything reads.
    with connect_sqlite(path, Keyring({"new": new}, active="new")) as store:
        _all_read(store, SESSIONS)
    # Rekeying again changes nothing.
    again = CliRunner().invoke(
        cli, ["rekey", "--url", sqlite_url(path), "--keyring", str(ring_file)]
    )
    assert "rekeyed 0 sessions; 20 already under the active key" in again.output


def test_every_command_takes_the_keyring_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    key = os.urandom(32)
    with connect_sqlite(path, Keyring({"k": key}, active="k")) as store:
        _write(store, "s1")
    ring_file = _keyring_file(tmp_path / "ring.json", {"k": key}, "k")
    url = sqlite_url(path)
    env = {"EVENTLOG_KEYRING": str(ring_file)}
    shown = CliRunner().invoke(cli, ["show", "s1", "--url", url], env=env)
    assert shown.exit_code == 0 and "hello s1" in shown.output
    without = CliRunner().invoke(cli, ["show", "s1", "--url", url], env={"EVENTLOG_KEYRING": ""})
    assert without.exit_code != 0
    listed = CliRunner().invoke(cli, ["ls", "--url", url])  # the index needs no key
    assert listed.exit_code == 0 and "s1" in listed.output
    no_key = CliRunner().invoke(cli, ["show", "s1", "--url", url])
    assert no_key.exit_code != 0 and "sealed" in no_key.output
    assert base64.b64encode(key).decode() not in shown.output + no_key.output


def test_delete_removes_the_rows_and_the_wrapped_data_key(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, Keyring({"k": os.urandom(32)}, active="k")) as store:
        _write(store, "s1")
        _write(store, "s2")
        assert store.delete("s1")
    with raw_sqlite(path) as conn:
        for table in ("sessions", "entries", "session_versions"):
            count = conn.execute(
                f"SELECT count(*) FROM {table} WHERE session_id = 's1'"
            ).fetchone()[0]
            assert count == 0, table
        assert stored_key_id(conn, "s2") == "k"


def test_crypto_shredding_per_tenant_keys_make_that_tenants_backups_unreadable(
    tmp_path: Path,
) -> None:
    path, backup = tmp_path / "t.db", tmp_path / "backup.db"
    acme = Keyring({"acme-1": os.urandom(32)}, active="acme-1")
    globex = Keyring({"globex-1": os.urandom(32)}, active="globex-1")
    with (
        connect_sqlite(path, acme, tenant="acme") as a,
        connect_sqlite(path, globex, tenant="globex") as g,
    ):
        _write(a, "s1")
        _write(g, "s1")
        with sqlite3.connect(path) as source, sqlite3.connect(backup) as copy:
            source.backup(copy)
        assert a.delete("s1")
    # delete alone: the backup still holds the wrapped key and reads with the keyring.
    with connect_sqlite(backup, acme, tenant="acme") as old:
        _all_read(old, ["s1"])
    # Destroying acme's wrapping key (its keyring now holds only a new key):
    # acme's backed-up sessions no longer open; globex's still do.
    acme_rotated = Keyring({"acme-2": os.urandom(32)}, active="acme-2")
    with connect_sqlite(backup, acme_rotated, tenant="acme") as old:
        info = old.info("s1")
        assert info is not None  # the index is plaintext: ids, counts, sizes
        with pytest.raises(DecryptionError):
            old.load("s1")
    with connect_sqlite(backup, globex, tenant="globex") as old:
        _all_read(old, ["s1"])


def test_a_million_seals_under_one_data_key_repeat_no_nonce() -> None:
    cipher = SessionCipher(os.urandom(32), tenant="", session_id="s")
    seal = cipher.seal_payload
    nonces = {seal("e", "message", seq, b"{}")[6:18] for seq in range(1_000_000)}
    assert len(nonces) == 1_000_000


def test_the_derived_key_changes_before_the_gcm_limit() -> None:
    assert GENERATION_SEALS <= 2**32 // 2  # NIST SP 800-38D, random 96-bit nonces
    cipher = SessionCipher(os.urandom(32), tenant="", session_id="s")
    last = cipher.seal_payload("e", "message", GENERATION_SEALS - 1, b"{}")
    first = cipher.seal_payload("e", "message", GENERATION_SEALS, b"{}")
    assert last[2:6] == (0).to_bytes(4, "big") and first[2:6] == (1).to_bytes(4, "big")
    # Both open; each only under its own generation's key.
    assert cipher.open_payload("e", "message", last) == b"{}"
    assert cipher.open_payload("e", "message", first) == b"{}"
    relabelled = first[:2] + last[2:6] + first[6:]
    with pytest.raises(DecryptionError):
        cipher.open_payload("e", "message", relabelled)
    # Metadata rotates by version the same way.
    meta = cipher.seal_metadata(GENERATION_SEALS, b"{}")
    assert meta[2:6] == (1).to_bytes(4, "big")


@pytest.mark.parametrize(
    "document",
    [
        {"active": "k", "keys": {"k": "bm90IDMyIGJ5dGVz"}},  # base64 of 12 bytes
        {"active": "k", "keys": {"k": "!!not base64!!"}},
        {"active": "other", "keys": {"k": base64.b64encode(bytes(32)).decode()}},
        {"keys": {"k": base64.b64encode(bytes(32)).decode()}},
        {"active": "k", "keys": {}},
        ["not", "an", "object"],
    ],
)
def test_a_bad_keyring_file_is_a_config_error_without_key_material(
    tmp_path: Path, document: object
) -> None:
    path = tmp_path / "ring.json"
    path.write_text(json.dumps(document))
    with pytest.raises(InvalidConfigError) as caught:
        Keyring.from_file(path)
    text = str(caught.value)
    assert "bm90IDMy" not in text and "not base64!!" not in text and "AAAAAAAA" not in text


def test_a_keyring_of_the_wrong_type_is_refused_before_anything_opens(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError):
        eventlog.connect(sqlite_url(tmp_path / "t.db"), keyring="k1")  # type: ignore[arg-type]
    assert not (tmp_path / "t.db").exists()
    with pytest.raises(InvalidConfigError):
        Keyring({"k": b"short"}, active="k")
