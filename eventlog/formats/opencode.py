"""OpenCode sessions (sst/opencode): the 1.x JSON storage folder and the 1.2+ SQLite database.

Layouts (FORMATS.md section 5):

- 1.x, ``~/.local/share/opencode/storage/``: ``session/<project>/<session>.json``
  (``Session.Info``), ``message/<session>/<message>.json`` (``MessageV2.Info``),
  ``part/<message>/<part>.json`` (``MessageV2.Part``);
- 1.2+, ``opencode.db``: tables ``session``, ``message(id, session_id,
  time_created, time_updated, data)``, ``part(id, message_id, session_id,
  time_created, time_updated, data)``; ``data`` is the record without its ids.

Mapping, one session at a time: every message and every part is an entry, in
OpenCode's order (messages by id in the folder, by ``(time_created, id)`` in
the database, as ``MessageV2.stream`` reads them; each message's parts by id
after it), each the child of the one before, so the session is one branch.
``kind`` is ``message/<role>`` or ``part/<type>``; ``timestamp`` is a message's
``time.created`` (unix ms) as an ISO string, none for a part; the payload is the
record with its ids, first (as the database reader rebuilds it from a row). The
leaf is the last entry, or with ``Session.Info.revert`` the entry before the
reverted message (or part), which OpenCode hides. Metadata: ``opencode.session``
(``Session.Info``; from the database, the session row as OpenCode's
``Session.fromRow`` reads it) and ``eventlog.parent_session_id`` for a child session
(``parentID``), merged into the stored metadata.

OpenCode rewrites parts in place and deletes messages and parts (revert
cleanup), so the import is a snapshot: `Store.save` records a changed part as
a superseding version and tombstones what is gone. A session that cannot be
read (a file that is not JSON, an entry the store refuses) is reported and
nothing of it is written; the other sessions still import.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from .._core.codec import check_session_id
from ..errors import ConflictError, InvalidInputError
from ..model import Entry, JSONObject, SessionData
from ..store import Store
from ._entry_checks import max_entry_bytes_of, validate_entry, validate_metadata
from ._lines import BadLine, MalformedLineError, decode_json
from ._results import ImportResult
from .folders import PARENT_KEY, FileFailure, FolderResult

__all__ = ["SESSION_KEY", "import_opencode"]

SESSION_KEY: Final = "opencode.session"
_DATABASE: Final = "opencode.db"
"""The database in OpenCode's data folder (a release channel's: ``opencode-<channel>.db``)."""
_MAX_FILE_BYTES: Final = 256 * 1024 * 1024
_object_decoder = msgspec.json.Decoder(dict[str, Any])
_object_or_list = msgspec.json.Decoder(Any)

_Record = tuple[str, int, JSONObject]
"""Where a record was read (file, or ``db:table``), its line (1, or the rowid), the record."""


class _Read(msgspec.Struct):
    session_id: str
    info: _Record
    messages: list[tuple[_Record, list[_Record]]]


def _iso(ms: object) -> str | None:
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return None
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _load_json(path: Path) -> JSONObject:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            raise BadLine(f"larger than {_MAX_FILE_BYTES} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise BadLine(f"cannot be read ({type(exc).__name__})") from None
    return decode_json(_object_decoder, data)


_MESSAGE_IDS: Final = ("id", "sessionID")
_PART_IDS: Final = ("id", "sessionID", "messageID")


def _ids_first(record: JSONObject, ids: tuple[str, ...]) -> JSONObject:
    """The record with its ids first, as the database reader builds it from a row.

    Content is compared by its bytes, key order included: a session whose files
    OpenCode moved into its database must read back as the same entries.
    """
    first = {key: record[key] for key in ids if key in record}
    return {**first, **{key: value for key, value in record.items() if key not in first}}


def _json_sessions(root: Path) -> Iterator[Callable[[], _Read]]:
    for info_path in sorted((root / "session").glob("*/*.json")):

        def read(info_path: Path = info_path) -> _Read:
            info = _guarded(info_path, 1, lambda: _load_json(info_path))
            sid = info.get("id")
            if not isinstance(sid, str):
                raise MalformedLineError(
                    "a session needs a string 'id'", path=str(info_path), line=1
                )
            messages = []
            for message_path in sorted((root / "message" / sid).glob("*.json")):
                message = _ids_first(
                    _guarded(message_path, 1, functools.partial(_load_json, message_path)),
                    _MESSAGE_IDS,
                )
                parts = [
                    (
                        str(part_path),
                        1,
                        _ids_first(
                            _guarded(part_path, 1, functools.partial(_load_json, part_path)),
                            _PART_IDS,
                        ),
                    )
                    for part_path in sorted((root / "part" / message_path.stem).glob("*.json"))
                ]
                messages.append(((str(message_path), 1, message), parts))
            return _Read(sid, (str(info_path), 1, info), messages)

        yield read


def _guarded(path: Path | str, line: int, load: Callable[[], JSONObject]) -> JSONObject:
    try:
        return load()
    except BadLine as bad:
        raise MalformedLineError(
            f"malformed record: {bad.reason}", path=str(path), line=line
        ) from None


def _row_object(where: str, rowid: int, text: object, ids: JSONObject) -> JSONObject:
    if not isinstance(text, str | bytes):
        raise MalformedLineError(
            "malformed record: 'data' is not JSON text", path=where, line=rowid
        )
    raw = text.encode() if isinstance(text, str) else text
    data = _guarded(where, rowid, lambda: decode_json(_object_decoder, raw))
    return {**ids, **data}


def _sqlite_sessions(db: Path) -> Iterator[Callable[[], _Read]]:
    uri = f"{db.resolve().as_uri()}?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT rowid AS _rowid, * FROM session ORDER BY id").fetchall()
    except sqlite3.Error as exc:
        connection.close()
        raise InvalidInputError(
            f"not an OpenCode database ({type(exc).__name__})", where=os.fspath(db)
        ) from None
    try:
        for row in rows:

            def read(row: sqlite3.Row = row) -> _Read:
                try:
                    return _read_row(connection, db, row)
                except sqlite3.Error as exc:
                    raise InvalidInputError(
                        f"not an OpenCode database ({type(exc).__name__})",
                        session_id=row["id"] if isinstance(row["id"], str) else None,
                        where=os.fspath(db),
                    ) from None

            yield read
    finally:
        connection.close()


_JSON_COLUMNS: Final = frozenset(("summary_diffs", "revert", "permission", "goal", "model"))
_INFO_OF_COLUMN: Final = {
    "id": "id",
    "slug": "slug",
    "project_id": "projectID",
    "workspace_id": "workspaceID",
    "directory": "directory",
    "path": "path",
    "parent_id": "parentID",
    "title": "title",
    "version": "version",
    "revert": "revert",
    "permission": "permission",
}
_SUMMARY_OF_COLUMN: Final = {
    "summary_additions": "additions",
    "summary_deletions": "deletions",
    "summary_files": "files",
}
_TIME_OF_COLUMN: Final = {
    "time_created": "created",
    "time_updated": "updated",
    "time_compacting": "compacting",
    "time_archived": "archived",
}


def info_of_row(row: JSONObject) -> JSONObject:
    """A 1.2+ ``session`` row as the ``Session.Info`` OpenCode reads from it (``fromRow``).

    So a session keeps the metadata its 1.x file gave it once OpenCode moves it
    into the database. A null column is an absent field (JSON.stringify drops
    undefined); a column ``fromRow`` does not read is kept under its own name.
    """
    info: JSONObject = {}
    summary: JSONObject = {}
    time: JSONObject = {}
    for column, value in row.items():
        if column in _SUMMARY_OF_COLUMN:
            if value is not None:
                summary[_SUMMARY_OF_COLUMN[column]] = value
        elif column in _TIME_OF_COLUMN:
            if value is not None:
                time[_TIME_OF_COLUMN[column]] = value
        elif column == "summary_diffs":
            if value is not None and summary:
                summary["diffs"] = value
        elif column == "share_url":
            if value:
                info["share"] = {"url": value}
        elif value is not None:
            info[_INFO_OF_COLUMN.get(column, column)] = value
    if summary:
        info["summary"] = {"additions": 0, "deletions": 0, "files": 0, **summary}
    info["time"] = time
    return info


def _read_row(connection: sqlite3.Connection, db: Path, row: sqlite3.Row) -> _Read:
    sid = row["id"]
    if not isinstance(sid, str):
        raise MalformedLineError(
            "a session needs a string 'id'", path=f"{db}:session", line=row["_rowid"]
        )
    # A Row iterates its values, not its keys.
    row_values = {key: row[key] for key in row.keys() if key != "_rowid"}  # noqa: SIM118
    for key, value in row_values.items():
        if key in _JSON_COLUMNS and isinstance(value, str):
            row_values[key] = _guarded(
                f"{db}:session",
                row["_rowid"],
                functools.partial(decode_json, _object_or_list, value.encode()),
            )
    info = info_of_row(row_values)
    messages = []
    for message in connection.execute(
        "SELECT rowid, id, data FROM message WHERE session_id = ? ORDER BY time_created, id",
        (sid,),
    ):
        record = _row_object(
            f"{db}:message",
            message[0],
            message[2],
            dict(zip(_MESSAGE_IDS, (message[1], sid), strict=True)),
        )
        parts = [
            (
                f"{db}:part",
                part[0],
                _row_object(
                    f"{db}:part",
                    part[0],
                    part[2],
                    dict(zip(_PART_IDS, (part[1], sid, message[1]), strict=True)),
                ),
            )
            for part in connection.execute(
                "SELECT rowid, id, data FROM part WHERE message_id = ? ORDER BY id",
                (message[1],),
            )
        ]
        messages.append(((f"{db}:message", message[0], record), parts))
    return _Read(sid, (f"{db}:session", row["_rowid"], info), messages)


def _entry(
    session_id: str,
    record: _Record,
    parent: str | None,
    kind: str,
    timestamp: str | None,
    limit: int,
) -> Entry:
    where, line, payload = record
    entry_id = payload.get("id")
    if not isinstance(entry_id, str):
        raise MalformedLineError(
            "malformed record: it needs a string 'id'", path=where, line=line, session_id=session_id
        )
    entry = Entry(entry_id, parent, kind, timestamp, payload)
    try:
        validate_entry(session_id, entry, max_entry_bytes=limit)
    except BadLine as bad:
        raise MalformedLineError(
            f"malformed record: {bad.reason}",
            path=where,
            line=line,
            session_id=session_id,
            entry_id=entry_id,
        ) from None
    return entry


def _session_data(read: _Read, limit: int) -> tuple[list[Entry], str | None]:
    entries: list[Entry] = []
    seen: set[str] = set()
    parent: str | None = None
    for message, parts in read.messages:
        records = [
            (
                message,
                f"message/{message[2].get('role')}",
                _iso(
                    (message[2].get("time") or {}).get("created")
                    if isinstance(message[2].get("time"), dict)
                    else None
                ),
            )
        ]
        records += [(part, f"part/{part[2].get('type')}", None) for part in parts]
        for record, kind, timestamp in records:
            entry = _entry(read.session_id, record, parent, kind, timestamp, limit)
            if entry.id in seen:
                raise MalformedLineError(
                    "malformed record: the id is used by an earlier record",
                    path=record[0],
                    line=record[1],
                    session_id=read.session_id,
                    entry_id=entry.id,
                )
            seen.add(entry.id)
            entries.append(entry)
            parent = entry.id
    return entries, _leaf(entries, read.info[2])


def _leaf(entries: list[Entry], info: JSONObject) -> str | None:
    revert = info.get("revert")
    if isinstance(revert, dict):
        target = revert.get("partID") or revert.get("messageID")
        for index, entry in enumerate(entries):
            if entry.id == target:
                return entries[index - 1].id if index else None
    return entries[-1].id if entries else None


def _import_one(store: Store, read: _Read) -> ImportResult:
    limit = max_entry_bytes_of(store)
    sid = check_session_id(read.session_id)
    entries, leaf = _session_data(read, limit)
    info = read.info[2]
    extra: JSONObject = {SESSION_KEY: info}
    parent = info.get("parentID")
    if isinstance(parent, str):
        extra[PARENT_KEY] = parent
    try:
        validate_metadata(sid, extra, max_entry_bytes=limit)
    except BadLine as bad:
        raise MalformedLineError(
            f"malformed record: {bad.reason}", path=read.info[0], line=read.info[1], session_id=sid
        ) from None
    existing = store.load(sid)
    metadata = {**(existing.metadata if existing is not None else {}), **extra}  # type: ignore[dict-item]
    result = store.save(
        sid,
        SessionData(entries=entries, leaf_id=leaf, metadata=metadata),
        expected_version=0 if existing is None else existing.version,
    )
    before = {entry.id for entry in existing.entries} if existing is not None else set()
    return ImportResult(
        session_id=sid,
        entries=len(entries),
        appended=len(result.appended),
        already_stored=sum(1 for entry in entries if entry.id in before),
        tombstoned=len(result.tombstoned),
        skipped_bad=0,
        bad_lines=(),
        version=result.version,
        leaf_id=leaf,
    )


def _located(path: Path) -> Path:
    """The storage folder or database `path` names (see `import_opencode`)."""
    if not path.is_dir() or (path / "session").is_dir():
        return path
    if (path / _DATABASE).is_file():
        return path / _DATABASE
    if (path / "storage" / "session").is_dir():
        return path / "storage"
    raise InvalidInputError(
        f"not an OpenCode folder (no session/, storage/ or {_DATABASE})", where=os.fspath(path)
    )


def import_opencode(
    store: Store,
    path: str | os.PathLike[str],
    *,
    progress: Callable[[str], None] | None = None,
) -> FolderResult:
    """Import every session of an OpenCode storage folder or database (module docstring).

    Args:
        store: the target store.
        path: the 1.x ``storage`` folder (holding ``session/``), the SQLite database,
            or OpenCode's data folder (``~/.local/share/opencode``) holding either:
            its ``opencode.db`` if there is one (1.2 leaves the migrated files behind),
            else its ``storage/``.
        progress: called after each session with its id (or the file that failed).

    Returns:
        The sessions imported and those that failed, with their typed errors.

    Raises:
        InvalidInputError: `path` is neither layout.
    """
    root = _located(Path(path))
    if root.is_dir():
        readers = _json_sessions(root)
    elif root.is_file():
        readers = _sqlite_sessions(root)
    else:
        raise InvalidInputError("no such file or folder", where=os.fspath(path))
    imported: list[ImportResult] = []
    failed: list[FileFailure] = []
    for read in readers:
        try:
            result = _import_one(store, read())
        except (InvalidInputError, ConflictError) as error:
            failed.append(FileFailure(Path(getattr(error, "path", os.fspath(root))), error))
            label = str(failed[-1].path)
        else:
            imported.append(result)
            label = result.session_id
        if progress is not None:
            progress(label)
    return FolderResult(tuple(imported), tuple(failed))
