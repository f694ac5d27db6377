"""OpenCode: the 1.x JSON storage folder and the 1.2+ SQLite database, reconciled on re-import."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner

from eventlog import Store, connect
from eventlog.cli import cli
from eventlog.errors import InvalidInputError
from eventlog.formats import MalformedLineError
from eventlog.formats.folders import PARENT_KEY
from eventlog.formats.opencode import SESSION_KEY, import_opencode
from eventlog.model import JSONObject

from .helpers import FIXTURES

STORAGE = FIXTURES / "opencode_storage"
S = "ses_7f3a2c1e9ffeABCDEF"
CHILD = "ses_7f3a2c1e9ffdCHILD0"
A1 = "msg_01JD0000000002"
TOOL = "prt_01JD0000000003"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "storage"
    shutil.copytree(STORAGE, target)
    return target


def test_storage_folder_imports_each_session_as_one_branch(store: Store) -> None:
    result = import_opencode(store, STORAGE)
    assert result.failed == ()
    assert sorted(imported.session_id for imported in result.imported) == [CHILD, S]
    data = store.load(S)
    assert data is not None
    kinds = [entry.kind for entry in data.entries]
    assert kinds == [
        "message/user",
        "part/text",
        "message/assistant",
        "part/step-start",
        "part/tool",
        "part/step-finish",
        "message/user",
        "part/text",
        "message/assistant",
        "part/text",
    ]
    for previous, entry in zip(data.entries, data.entries[1:], strict=False):
        assert entry.parent_id == previous.id
    assert data.entries[0].parent_id is None
    assert data.entries[0].timestamp == "2025-11-24T16:00:00.000Z"
    assert data.leaf_id == data.entries[-1].id
    tool = next(entry for entry in data.entries if entry.id == TOOL)
    assert tool.payload == json.loads((STORAGE / "part" / A1 / f"{TOOL}.json").read_text())
    assert data.metadata[SESSION_KEY]["title"] == "Fix CI"
    child = store.load(CHILD)
    assert child is not None and child.metadata[PARENT_KEY] == S


def test_reimport_of_an_unchanged_folder_writes_nothing(store: Store) -> None:
    first = import_opencode(store, STORAGE)
    again = import_opencode(store, STORAGE)
    assert [r.version for r in again.imported] == [r.version for r in first.imported]
    assert all(r.appended == 0 and r.tombstoned == 0 for r in again.imported)


GONE = "msg_01JD0000000006"


def _change_folder(tmp_path: Path, tool: JSONObject) -> Path:
    """The storage folder after OpenCode pruned the tool part and revert cleanup ran."""
    storage = _copy(tmp_path)
    (storage / "part" / A1 / f"{TOOL}.json").write_text(json.dumps(tool))
    (storage / "message" / S / f"{GONE}.json").unlink()
    shutil.rmtree(storage / "part" / GONE)
    return storage


def _change_database(tmp_path: Path, tool: JSONObject) -> Path:
    """The same changes in a 1.2 database: the row rewritten in place, the others deleted."""
    db = _database(tmp_path)
    rest = {k: v for k, v in tool.items() if k not in ("id", "sessionID", "messageID")}
    with closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("UPDATE part SET data = ? WHERE id = ?", (json.dumps(rest), TOOL))
        connection.execute("DELETE FROM part WHERE message_id = ?", (GONE,))
        connection.execute("DELETE FROM message WHERE id = ?", (GONE,))
    return db


@pytest.mark.parametrize("kind", ["folder", "database"])
def test_changed_and_deleted_parts_are_reconciled(store: Store, tmp_path: Path, kind: str) -> None:
    original = STORAGE if kind == "folder" else _database(tmp_path / "before")
    import_opencode(store, original)
    before = store.load(S)
    assert before is not None
    # OpenCode rewrites a tool part in place (pruning), and revert cleanup deletes a message.
    tool = json.loads((STORAGE / "part" / A1 / f"{TOOL}.json").read_text())
    tool["state"]["time"]["compacted"] = 1764000100000
    change = _change_folder if kind == "folder" else _change_database
    changed_input = change(tmp_path / "after", tool)
    (result,) = [r for r in import_opencode(store, changed_input).imported if r.session_id == S]
    assert result.tombstoned == 2
    assert result.version == before.version + 1
    after = store.load(S)
    assert after is not None
    assert len(after.entries) == 8
    assert GONE not in {entry.id for entry in after.entries}
    changed = next(entry for entry in after.entries if entry.id == TOOL)
    assert changed.payload == tool
    assert after.leaf_id == "prt_01JD0000000005a"
    old = store.load(S, at_version=before.version)
    assert old is not None and old.entries == before.entries  # the history is kept
    (again,) = [r for r in import_opencode(store, changed_input).imported if r.session_id == S]
    assert (again.version, again.appended, again.tombstoned) == (result.version, 0, 0)


def test_the_database_after_the_folder_rewrites_no_entry(store: Store, tmp_path: Path) -> None:
    """OpenCode 1.2 moves the files into its database: the same entries, the same Info."""
    storage = _copy(tmp_path)
    # A file need not start with its ids; the database holds them in columns.
    message_file = storage / "message" / S / f"{A1}.json"
    message = json.loads(message_file.read_text())
    message_id = message.pop("id")
    message_file.write_text(json.dumps({**message, "id": message_id}))
    first = {r.session_id: r for r in import_opencode(store, storage).imported}
    infos = {sid: store.load(sid).metadata[SESSION_KEY] for sid in first}  # type: ignore[union-attr]
    again = import_opencode(store, _database(tmp_path / "db", storage))
    assert again.failed == ()
    for result in again.imported:
        assert (result.appended, result.tombstoned) == (0, 0)
        # The row has what the 1.x file lacked (slug, cost): metadata only, no entry.
        sid = result.session_id
        (change,) = store.changes(sid, after_version=first[sid].version).items
        assert (change.replaced, change.appended, change.removed_ids) == ([], [], [])
        info = change.metadata[SESSION_KEY]  # type: ignore[index]
        assert {k: v for k, v in info.items() if k not in ("slug", "cost")} == infos[sid]


def test_revert_hides_the_reverted_messages(store: Store, tmp_path: Path) -> None:
    storage = _copy(tmp_path)
    info_file = next((storage / "session").glob(f"*/{S}.json"))
    info = json.loads(info_file.read_text())
    info["revert"] = {"messageID": "msg_01JD0000000005"}
    info_file.write_text(json.dumps(info))
    import_opencode(store, storage)
    data = store.load(S)
    assert data is not None
    assert data.leaf_id == "prt_01JD0000000004"  # the entry before the reverted message
    assert len(data.entries) == 10  # hidden, not deleted, until OpenCode cleans up


def test_a_bad_file_fails_its_session_only(store: Store, tmp_path: Path) -> None:
    storage = _copy(tmp_path)
    bad = storage / "part" / A1 / f"{TOOL}.json"
    bad.write_text('{"id": "prt_01JD0000000003", "secret": "hunter2",')
    result = import_opencode(store, storage)
    assert [r.session_id for r in result.imported] == [CHILD]
    (failure,) = result.failed
    assert isinstance(failure.error, MalformedLineError)
    assert failure.error.path == str(bad)
    assert "hunter2" not in str(failure.error)
    assert store.load(S) is None


def _database(tmp_path: Path, storage: Path = STORAGE) -> Path:
    """An OpenCode 1.2 database (session.sql.ts columns) holding the storage folder's sessions."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    db = tmp_path / "opencode.db"
    connection = sqlite3.connect(db)
    connection.executescript(
        "CREATE TABLE session (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, "
        "workspace_id TEXT, parent_id TEXT, slug TEXT NOT NULL, directory TEXT NOT NULL, "
        "path TEXT, title TEXT NOT NULL, version TEXT NOT NULL, share_url TEXT, "
        "summary_additions INTEGER, summary_deletions INTEGER, summary_files INTEGER, "
        "summary_diffs TEXT, cost REAL NOT NULL DEFAULT 0, revert TEXT, permission TEXT, "
        "time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL, "
        "time_compacting INTEGER, time_archived INTEGER);"
        "CREATE TABLE message (id TEXT PRIMARY KEY, session_id TEXT NOT NULL, "
        "time_created INTEGER NOT NULL, time_updated INTEGER NOT NULL, data TEXT NOT NULL);"
        "CREATE TABLE part (id TEXT PRIMARY KEY, message_id TEXT NOT NULL, "
        "session_id TEXT NOT NULL, time_created INTEGER NOT NULL, "
        "time_updated INTEGER NOT NULL, data TEXT NOT NULL);"
    )
    for info_file in sorted(storage.glob("session/*/*.json")):
        info = json.loads(info_file.read_text())
        connection.execute(
            "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, "
            "time_created, time_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                info["id"],
                info["projectID"],
                info.get("parentID"),
                "slug",
                info["directory"],
                info["title"],
                info["version"],
                info["time"]["created"],
                info["time"]["updated"],
            ),
        )
        # Inserted newest first: the reader orders, not the rowids.
        for message_file in sorted((storage / "message" / info["id"]).glob("*.json"), reverse=True):
            message = json.loads(message_file.read_text())
            data = {k: v for k, v in message.items() if k not in ("id", "sessionID")}
            created = message["time"]["created"]
            connection.execute(
                "INSERT INTO message VALUES (?, ?, ?, ?, ?)",
                (message["id"], info["id"], created, created, json.dumps(data)),
            )
            for part_file in sorted((storage / "part" / message["id"]).glob("*.json")):
                part = json.loads(part_file.read_text())
                rest = {k: v for k, v in part.items() if k not in ("id", "sessionID", "messageID")}
                connection.execute(
                    "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
                    (part["id"], message["id"], info["id"], created, created, json.dumps(rest)),
                )
    connection.commit()
    connection.close()
    return db


def test_database_gives_the_same_entries_as_the_folder(store: Store, tmp_path: Path) -> None:
    result = import_opencode(store, _database(tmp_path))
    assert result.failed == ()
    from_db = store.load(S)
    assert from_db is not None
    assert from_db.metadata[SESSION_KEY]["title"] == "Fix CI"
    child = store.load(CHILD)
    assert child is not None and child.metadata[PARENT_KEY] == S
    with connect("memory://") as other:
        import_opencode(other, STORAGE)
        from_folder = other.load(S)
        assert from_folder is not None
        assert from_db.entries == from_folder.entries
        assert from_db.leaf_id == from_folder.leaf_id


def test_opencode_data_folder_is_read_through_its_database_or_storage(
    store: Store, tmp_path: Path
) -> None:
    """A user passes ``~/.local/share/opencode``: the database once 1.2 has migrated
    (the 1.x files stay behind), else the storage folder."""
    data = tmp_path / "opencode"
    shutil.copytree(STORAGE, data / "storage")
    from_storage = import_opencode(store, data)
    assert sorted(r.session_id for r in from_storage.imported) == [CHILD, S]
    shutil.rmtree(data / "storage" / "message" / S)  # the database is read, not these
    _database(tmp_path / "db").rename(data / "opencode.db")
    from_database = import_opencode(store, data)
    assert from_database.failed == ()
    loaded = store.load(S)
    assert loaded is not None and len(loaded.entries) == 10
    assert loaded.metadata[SESSION_KEY]["slug"] == "slug"  # a database column


def test_not_opencode_input_is_a_typed_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        import_opencode(store, tmp_path)  # no session/
    not_db = tmp_path / "x.db"
    not_db.write_bytes(b"this is not sqlite")
    with pytest.raises(InvalidInputError):
        import_opencode(store, not_db)
    with pytest.raises(InvalidInputError):
        import_opencode(store, tmp_path / "missing")


def test_cli_imports_a_storage_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    run = CliRunner().invoke(cli, ["import", "--url", url, "--format", "opencode", str(STORAGE)])
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines() == ["imported 2 of 2 sessions: 14 entries, 14 new; 0 failed"]
    run = CliRunner().invoke(
        cli, ["import", "--url", url, "--format", "opencode", str(_database(tmp_path))]
    )
    assert run.exit_code == 0, run.output
    assert run.stdout.splitlines() == ["imported 2 of 2 sessions: 14 entries, 0 new; 0 failed"]
