"""A sealed eventlog dump (format 2): it stays sealed, restores with the keyring, nothing else.

- Round trip: a sealed session with deltas, a reconciling save, removals and a
  purge, dumped with the keyring: no payload or metadata sentinel in the file;
  restored into another store with the same keyring, every kept version loads
  as it did, and the restored session is sealed again (its own data key).
- Without the keyring, or with another one: `DecryptionError`, nothing written.
- Lines swapped, dropped, copied from another dump, or the header changed:
  `DecryptionError` (or, for a dump cut after a whole line, the dump's own
  check), nothing written.
- The CLI: ``export --format jsonl`` with a keyring writes the sealed dump and
  says so; ``--plaintext`` writes it decrypted and says that; ``import`` with the
  keyring restores it.
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventlog import (
    DecryptionError,
    Entry,
    HistoryPurgedError,
    InvalidInputError,
    Keyring,
    SessionData,
    SessionDelta,
    Store,
)
from eventlog.cli.commands import cli
from eventlog.formats import export_file, import_file
from eventlog.formats.dump import dump, restore

from .encryption_helpers import connect_sqlite, found_in, keyring, raw_sqlite, sqlite_url

MARK = "SENTINEL-dump-"


def _history(store: Store, marks: list[str]) -> None:
    """Versions 1-6: deltas, metadata, a removal, a reconciling save, then a purge."""
    it = iter(marks)
    for n in range(3):
        entry = Entry(f"e{n}", f"e{n - 1}" if n else None, "message", None, {"t": next(it)})
        store.save_delta("chat", SessionDelta([entry], leaf_id=entry.id, metadata={"m": next(it)}))
    store.save_delta("chat", SessionDelta([], removed_entry_ids=["e2"], leaf_id="e1"))
    data = store.load("chat")
    assert data is not None
    changed = Entry("e1", "e0", "message", None, {"t": next(it)})
    store.save("chat", SessionData(entries=[data.entries[0], changed], leaf_id="e1"))
    store.save_delta("chat", SessionDelta([], metadata={"m": next(it)}))
    store.purge("chat")  # history before the current version goes: a dump starting above 1


def _marks(count: int = 8) -> list[str]:
    return [f"{MARK}{n}-{os.urandom(6).hex()}" for n in range(count)]


def _sealed_dump(tmp_path: Path, ring: Keyring) -> tuple[bytes, list[str], Path]:
    path = tmp_path / "source.db"
    marks = _marks()
    with connect_sqlite(path, ring) as store:
        _history(store, marks)
        stream = io.BytesIO()
        dump(store, "chat", stream, keyring=ring)
    return stream.getvalue(), marks, path


def _versions(store: Store, session_id: str) -> list[SessionData | None]:
    info = store.info(session_id)
    assert info is not None
    kept = []
    for version in range(1, info.version + 1):
        try:
            kept.append(store.load(session_id, at_version=version))
        except HistoryPurgedError:  # the same versions on both sides
            kept.append(None)
    return kept


def _same(a: SessionData | None, b: SessionData | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.entries, a.leaf_id, a.metadata, a.version) == (
        b.entries,
        b.leaf_id,
        b.metadata,
        b.version,
    )


def test_a_sealed_dump_round_trips_and_stays_sealed(tmp_path: Path) -> None:
    ring = keyring("k1")
    blob, marks, source_path = _sealed_dump(tmp_path, ring)
    assert json.loads(blob.splitlines()[0])["eventlog_dump"] == 2
    assert found_in(blob, marks) == []
    assert b'"e1"' not in blob  # entry ids are sealed too, not only payloads
    target_path = tmp_path / "target.db"
    with connect_sqlite(target_path, ring) as target, connect_sqlite(source_path, ring) as source:
        restored = restore(target, io.BytesIO(blob), path="<dump>", keyring=ring)
        assert restored.session_id == "chat"
        latest = source.load("chat")
        assert _same(target.load("chat"), latest)
        pairs = zip(_versions(source, "chat"), _versions(target, "chat"), strict=True)
        assert all(_same(a, b) for a, b in pairs)
        assert latest is not None and latest.entries[-1].payload == {"t": marks[6]}
    with raw_sqlite(target_path) as conn:
        (data_key,) = conn.execute("SELECT data_key FROM sessions").fetchone()
        assert data_key is not None
    assert found_in(target_path.read_bytes(), marks) == []


def test_a_plain_dump_of_the_same_session_holds_the_plaintext(tmp_path: Path) -> None:
    # The control for the test above: the sentinels are findable when not sealed.
    ring = keyring("k1")
    marks = _marks()
    with connect_sqlite(tmp_path / "s.db", ring) as store:
        _history(store, marks)
        stream = io.BytesIO()
        dump(store, "chat", stream)
    assert json.loads(stream.getvalue().splitlines()[0])["eventlog_dump"] == 1
    assert set(found_in(stream.getvalue(), marks)) >= {marks[0], marks[6], marks[7]}


@pytest.mark.parametrize("ring", [None, "other"])
def test_without_its_keyring_a_sealed_dump_restores_nothing(
    tmp_path: Path, ring: str | None
) -> None:
    blob, _, _ = _sealed_dump(tmp_path, keyring("k1"))
    other = None if ring is None else keyring("k1")  # same id, another key
    with connect_sqlite(tmp_path / "target.db", other) as target:
        with pytest.raises(DecryptionError) as caught:
            restore(target, io.BytesIO(blob), path="<dump>", keyring=other)
        assert caught.value.session_id == "chat"
        assert target.info("chat") is None


def _tampered(blob: bytes, how: str, other: bytes) -> bytes:
    lines = blob.splitlines()
    if how == "swap":
        lines[2], lines[3] = lines[3], lines[2]
    elif how == "drop_middle":
        del lines[2]
    elif how == "line_from_another_dump":
        lines[2] = other.splitlines()[2]
    elif how == "header_version":
        header = json.loads(lines[0])
        header["first_version"] -= 1
        lines[0] = json.dumps(header).encode()
    elif how == "header_session":
        header = json.loads(lines[0])
        header["session_id"] = "other"
        lines[0] = json.dumps(header).encode()
    elif how == "bit_flip":
        sealed = json.loads(lines[2])["sealed"]
        raw = bytearray(base64.b64decode(sealed))
        raw[-1] ^= 1
        lines[2] = json.dumps({"sealed": base64.b64encode(bytes(raw)).decode()}).encode()
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize(
    "how",
    [
        "swap",
        "drop_middle",
        "line_from_another_dump",
        "header_version",
        "header_session",
        "bit_flip",
    ],
)
def test_a_changed_sealed_dump_restores_nothing(tmp_path: Path, how: str) -> None:
    ring = keyring("k1")
    blob, _, source_path = _sealed_dump(tmp_path, ring)
    with connect_sqlite(source_path, ring) as store:
        other = io.BytesIO()
        dump(store, "chat", other, keyring=ring)
    assert len(blob.splitlines()) >= 4
    with connect_sqlite(tmp_path / "target.db", ring) as target:
        with pytest.raises(DecryptionError):
            restore(
                target, io.BytesIO(_tampered(blob, how, other.getvalue())), path="<d>", keyring=ring
            )
        assert target.list_sessions().items == []


def test_the_cli_keeps_a_jsonl_export_sealed_unless_asked(tmp_path: Path) -> None:
    key = os.urandom(32)
    ring = Keyring({"k": key}, active="k")
    ring_file = tmp_path / "ring.json"
    ring_file.write_text(json.dumps({"active": "k", "keys": {"k": base64.b64encode(key).decode()}}))
    marks = _marks()
    with connect_sqlite(tmp_path / "s.db", ring) as store:
        _history(store, marks)
    url = sqlite_url(tmp_path / "s.db")
    base = ["--url", url, "--keyring", str(ring_file)]
    sealed_file, plain_file = tmp_path / "sealed.jsonl", tmp_path / "plain.jsonl"

    sealed = CliRunner().invoke(
        cli, ["export", "--format", "jsonl", "chat", "-o", str(sealed_file), *base]
    )
    assert sealed.exit_code == 0, sealed.output
    assert "sealed" in sealed.output and "plaintext" not in sealed.output
    assert found_in(sealed_file.read_bytes(), marks) == []

    plain = CliRunner().invoke(
        cli, ["export", "--format", "jsonl", "chat", "-o", str(plain_file), "--plaintext", *base]
    )
    assert plain.exit_code == 0, plain.output
    assert "in plaintext (decrypted)" in plain.output
    assert marks[6] in plain_file.read_text()

    target = sqlite_url(tmp_path / "t.db")
    restored = CliRunner().invoke(
        cli,
        [
            "import",
            "--format",
            "jsonl",
            str(sealed_file),
            "--url",
            target,
            "--keyring",
            str(ring_file),
        ],
    )
    assert restored.exit_code == 0, restored.output
    refused = CliRunner().invoke(
        cli,
        ["import", "--format", "jsonl", str(sealed_file), "--url", sqlite_url(tmp_path / "u.db")],
    )
    assert refused.exit_code != 0 and "keyring" in refused.output
    with connect_sqlite(tmp_path / "t.db", ring) as store:
        data = store.load("chat")
        assert data is not None and data.entries[-1].payload == {"t": marks[6]}
    with connect_sqlite(tmp_path / "u.db", None) as store:
        assert store.list_sessions().items == []


def test_export_file_refuses_a_keyring_for_a_plaintext_format(tmp_path: Path) -> None:
    ring = keyring("k1")
    with connect_sqlite(tmp_path / "s.db", ring) as store:
        _history(store, _marks())
        with pytest.raises(InvalidInputError, match="jsonl dump only"):
            export_file(store, "pi", "chat", tmp_path / "out.jsonl", keyring=ring)
        with pytest.raises(InvalidInputError, match="jsonl dump only"):
            import_file(store, "pi", tmp_path / "s.db", keyring=ring)
    assert not (tmp_path / "out.jsonl").exists()
