"""Sealed values that were moved, changed or opened with the wrong key (DESIGN.md section 8).

Every case edits the stored bytes the way someone with the database but not the
keys could (raw SQL on the SQLite file, or on PostgreSQL as the tables' owner),
then reads through the store: a `DecryptionError` naming the session (and the
entry, for a payload), never plaintext of another row, and never a read that
quietly leaves the bad row out (the OpenAI Agents SDK's EncryptedSession skips
items it cannot decrypt; eventlog fails the read instead).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pgserver
import psycopg
import pytest
from psycopg import sql

import eventlog
from eventlog import CorruptionError, DecryptionError, Entry, Keyring, SessionDelta, Store
from eventlog._core.sealing import Sealer, SessionCipher

from .encryption_helpers import connect_sqlite, keyring, raw_sqlite

ENTRY_IDS = [f"e{n}" for n in range(10)]


def _write(store: Store, session_id: str, tag: str = "") -> None:
    parent = None
    entries = []
    for entry_id in ENTRY_IDS:
        entries.append(Entry(entry_id, parent, "message", None, {"text": f"{tag}{entry_id}"}))
        parent = entry_id
    store.save_delta(
        session_id, SessionDelta(entries, leaf_id=parent, metadata={"title": f"{tag}title"})
    )
    # A second version, so `load(at_version=1)` reads the log, not the live rows.
    store.save_delta(session_id, SessionDelta([], metadata={"title": f"{tag}renamed"}))


# Every read that returns payloads or metadata: each must fail, none may skip.
READS: dict[str, Callable[[Store, str], Any]] = {
    "load": lambda store, sid: store.load(sid),
    "load_raw": lambda store, sid: store.load(sid, raw=True),
    "load_at_version": lambda store, sid: store.load(sid, at_version=1),
    "path": lambda store, sid: store.path(sid),
    "path_tail": lambda store, sid: store.path(sid, limit=100),
    "scan": lambda store, sid: store.scan(sid, id_prefix=""),
    "changes": lambda store, sid: store.changes(sid),
    "fork": lambda store, sid: store.fork(sid, sid + "-fork"),
}


def _swap_payloads(path: Path, a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    """Exchange the stored payloads of two rows, each named (tenant, session, entry)."""
    where = "tenant = ? AND session_id = ? AND entry_id = ?"
    with raw_sqlite(path) as conn:
        first = conn.execute(f"SELECT payload FROM entries WHERE {where}", a).fetchone()[0]
        second = conn.execute(f"SELECT payload FROM entries WHERE {where}", b).fetchone()[0]
        conn.execute(f"UPDATE entries SET payload = ? WHERE {where}", (second, *a))
        conn.execute(f"UPDATE entries SET payload = ? WHERE {where}", (first, *b))


def _assert_every_read_fails(store: Store, session_id: str, entry_ids: set[str]) -> None:
    for name, read in READS.items():
        with pytest.raises(DecryptionError) as caught:
            read(store, session_id)
        assert caught.value.session_id == session_id, name
        assert caught.value.entry_id in entry_ids, name
    for entry_id in entry_ids:
        with pytest.raises(DecryptionError):
            store.entry(session_id, entry_id)


def test_two_rows_of_one_session_swapped(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1")
        _swap_payloads(path, ("", "s1", "e3"), ("", "s1", "e7"))
        _assert_every_read_fails(store, "s1", {"e3", "e7"})
        assert store.entry("s1", "e4") is not None  # untouched rows still open


def test_same_row_of_two_sessions_swapped(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1")
        _write(store, "s2")
        _swap_payloads(path, ("", "s1", "e3"), ("", "s2", "e3"))
        _assert_every_read_fails(store, "s1", {"e3"})
        _assert_every_read_fails(store, "s2", {"e3"})


def test_same_row_of_two_tenants_swapped(tmp_path: Path) -> None:
    # One keyring for both tenants: only the associated data tells them apart.
    path = tmp_path / "t.db"
    ring = keyring("k1")
    with connect_sqlite(path, ring, tenant="a") as a, connect_sqlite(path, ring, tenant="b") as b:
        _write(a, "s1", "a-")
        _write(b, "s1", "b-")
        _swap_payloads(path, ("a", "s1", "e3"), ("b", "s1", "e3"))
        _assert_every_read_fails(a, "s1", {"e3"})
        _assert_every_read_fails(b, "s1", {"e3"})


def test_metadata_swapped_between_sessions(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1")
        _write(store, "s2")
        with raw_sqlite(path) as conn:
            conn.execute(
                "UPDATE sessions SET metadata = (SELECT metadata FROM sessions "
                "WHERE session_id = 's2') WHERE session_id = 's1'"
            )
        with pytest.raises(DecryptionError) as caught:
            store.load("s1")
        assert caught.value.session_id == "s1" and caught.value.entry_id is None
        assert store.load("s2") is not None


@pytest.mark.parametrize("column", ["payload", "metadata"])
@pytest.mark.parametrize("where", ["header", "ciphertext", "tag"])
def test_one_bit_flipped(tmp_path: Path, column: str, where: str) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1")
        table, key = ("entries", "entry_id = 'e5'") if column == "payload" else ("sessions", "1")
        with raw_sqlite(path) as conn:
            stored = bytearray(
                conn.execute(f"SELECT {column} FROM {table} WHERE {key}").fetchone()[0]
            )
            # header: the generation; ciphertext: its first byte; tag: the last byte.
            at = {"header": 5, "ciphertext": 18, "tag": len(stored) - 1}[where]
            stored[at] ^= 0x01
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE {key}", (bytes(stored),))
        with pytest.raises(DecryptionError) as caught:
            store.load("s1")
        assert caught.value.session_id == "s1"
        assert caught.value.entry_id == ("e5" if column == "payload" else None)


def test_wrong_key_fails_every_read_and_skips_nothing(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1")
    # The same key id with other key bytes: the data key does not unwrap.
    with connect_sqlite(path, keyring("k1")) as wrong:
        for name, read in READS.items():
            with pytest.raises(DecryptionError) as caught:
                read(wrong, "s1")
            assert caught.value.session_id == "s1", name
        with pytest.raises(DecryptionError):
            wrong.entry("s1", "e0")
        # Writes need the data key too (content identity, sealing): refused, nothing written.
        with pytest.raises(DecryptionError):
            wrong.save_delta("s1", SessionDelta([Entry("e99", "e9", "message", None, {})]))
        info = wrong.info("s1")
        assert info is not None and info.entry_count == len(ENTRY_IDS) and info.version == 2


def test_unknown_key_id_is_a_decryption_error(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1")
    with connect_sqlite(path, keyring("k2")) as other, pytest.raises(DecryptionError) as caught:
        other.load("s1")
    assert caught.value.session_id == "s1"


def test_without_a_keyring_reads_of_payloads_fail_and_the_index_still_reads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1")
    with connect_sqlite(path, None) as plain:
        info = plain.info("s1")
        assert info is not None and info.entry_count == len(ENTRY_IDS)
        assert [i.session_id for i in plain.list_sessions().items] == ["s1"]
        for name, read in READS.items():
            with pytest.raises(DecryptionError) as caught:
                read(plain, "s1")
            assert caught.value.session_id == "s1", name
        with pytest.raises(DecryptionError) as caught_entry:
            plain.entry("s1", "e0")
        assert caught_entry.value.entry_id == "e0"


def test_a_damaged_plain_row_is_still_corruption_not_decryption(tmp_path: Path) -> None:
    # Sealing must not turn every damaged byte into a DecryptionError: a plain
    # session's bad JSON stays a CorruptionError.
    path = tmp_path / "t.db"
    with connect_sqlite(path, None) as store:
        _write(store, "s1")
        with raw_sqlite(path) as conn:
            conn.execute("UPDATE entries SET payload = x'7b7b' WHERE entry_id = 'e1'")
        with pytest.raises(CorruptionError):
            store.load("s1")


def test_a_sealed_payload_that_opens_to_bad_json_is_corruption(tmp_path: Path) -> None:
    # The writer (holding the key) sealed bytes that are not a JSON object: the
    # seal is sound, so this is damage, not a failed open; and the load names it.
    ring = keyring("k1")
    path = tmp_path / "t.db"
    with connect_sqlite(path, ring) as store:
        _write(store, "s1")
        with raw_sqlite(path) as conn:
            (data_key,) = conn.execute("SELECT data_key FROM sessions").fetchone()
            seq = conn.execute("SELECT seq FROM entries WHERE entry_id = 'e1'").fetchone()[0]
            cipher = Sealer(ring, tenant="").cipher("s1", bytes(data_key))
            bad = cipher.seal_payload("e1", "message", seq, b"{{")
            conn.execute("UPDATE entries SET payload = ? WHERE entry_id = 'e1'", (bad,))
        for raw in (False, True):
            with pytest.raises(CorruptionError) as caught:
                store.load("s1", raw=raw)
            assert not isinstance(caught.value, DecryptionError)
            assert caught.value.entry_id == "e1" and caught.value.session_id == "s1"


def test_keys_never_in_reprs_errors_or_pickles(tmp_path: Path) -> None:
    keys = {"k1": bytes(range(32))}
    ring = Keyring(keys, active="k1")
    shown = repr(ring)
    assert "k1" in shown
    for form in (keys["k1"].hex(), str(keys["k1"]), "AAECAwQF"):  # hex, bytes, base64 start
        assert form not in shown
    with pytest.raises(TypeError):
        pickle.dumps(ring)
    path = tmp_path / "t.db"
    with connect_sqlite(path, ring) as store:
        _write(store, "s1", "secret-")
        assert keys["k1"].hex() not in repr(store)
    with connect_sqlite(path, keyring("k1")) as wrong, pytest.raises(DecryptionError) as caught:
        wrong.load("s1")
    text = str(caught.value) + repr(caught.value) + repr(pickle.loads(pickle.dumps(caught.value)))
    assert "secret-" not in text and keys["k1"].hex() not in text


@pytest.mark.postgres
def test_postgres_rows_swapped_between_tenants() -> None:
    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("sealed_swap")
    url = pgserver.with_search_path(pgserver.server_dsn(), schema)
    ring = keyring("k1")
    with (
        eventlog.connect(url, keyring=ring, tenant="a") as a,
        eventlog.connect(url, keyring=ring, tenant="b") as b,
    ):
        _write(a, "s1", "a-")
        _write(b, "s1", "b-")
        entries = sql.Identifier(schema, "entries")
        with psycopg.connect(pgserver.server_dsn(), autocommit=True) as conn:
            conn.execute(
                sql.SQL(
                    "UPDATE {t} AS x SET payload = y.payload FROM {t} AS y "
                    "WHERE x.session_id = 's1' AND y.session_id = 's1' AND x.entry_id = 'e3' "
                    "AND y.entry_id = 'e3' AND x.tenant <> y.tenant"
                ).format(t=entries)
            )
        _assert_every_read_fails(a, "s1", {"e3"})
        _assert_every_read_fails(b, "s1", {"e3"})


def test_data_key_and_rows_copied_to_another_session(tmp_path: Path) -> None:
    # Copying the wrapped data key along with the ciphertexts does not help: the
    # key is wrapped for its tenant and session.
    path = tmp_path / "t.db"
    with connect_sqlite(path, keyring("k1")) as store:
        _write(store, "s1", "one-")
        _write(store, "s2", "two-")
        with raw_sqlite(path) as conn:
            conn.execute(
                "UPDATE sessions SET data_key = (SELECT data_key FROM sessions "
                "WHERE session_id = 's1'), metadata = (SELECT metadata FROM sessions "
                "WHERE session_id = 's1') WHERE session_id = 's2'"
            )
            conn.execute(
                "UPDATE entries SET payload = (SELECT payload FROM entries AS o "
                "WHERE o.session_id = 's1' AND o.entry_id = entries.entry_id) "
                "WHERE session_id = 's2'"
            )
        with pytest.raises(DecryptionError) as caught:
            store.load("s2")
        assert caught.value.session_id == "s2"


BINDINGS = {
    "tenant": {"tenant": "other"},
    "session": {"session_id": "other"},
}


@pytest.mark.parametrize("moved", ["tenant", "session", "entry", "kind", "format"])
def test_associated_data_binds_each_field(moved: str) -> None:
    # One data key on both sides, so only the associated data can tell them apart.
    root = bytes(32)
    here = {"tenant": "t", "session_id": "s"}
    sealer = SessionCipher(root, **here)
    sealed = sealer.seal_payload("e1", "message", 0, b'{"a":1}')
    assert sealer.open_payload("e1", "message", sealed) == b'{"a":1}'
    opener = SessionCipher(root, **{**here, **BINDINGS.get(moved, {})})
    entry_id, kind = (
        ("e2" if moved == "entry" else "e1"),
        ("custom" if moved == "kind" else "message"),
    )
    if moved == "format":
        sealed = sealed[:1] + bytes([sealed[1] + 1]) + sealed[2:]
    with pytest.raises(DecryptionError):
        opener.open_payload(entry_id, kind, sealed)


@pytest.mark.parametrize(("tenant", "session_id"), [("t", "other"), ("other", "s")])
def test_a_wrapped_data_key_is_bound_to_its_tenant_and_session(
    tenant: str, session_id: str
) -> None:
    ring = keyring("k1")
    _, stored = Sealer(ring, tenant="t").new_session("s")
    assert Sealer(ring, tenant="t").cipher("s", stored) is not None
    with pytest.raises(DecryptionError) as caught:
        Sealer(ring, tenant=tenant).cipher(session_id, stored)
    assert caught.value.session_id == session_id
