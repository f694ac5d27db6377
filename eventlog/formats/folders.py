"""Import every session of a tool's folder: a Claude Code project, a pi sessions folder.

What is found, and under which session id:

- ``claude-code`` (``~/.claude/projects/<cwd>/``): each ``<id>.jsonl`` directly in
  the folder is session ``<id>``. Its sub-agent files,
  ``<id>/subagents/**/agent-<agent>.jsonl`` (every line ``isSidechain: true``),
  are sessions of their own named by their path without ``.jsonl``, e.g.
  ``<id>/subagents/agent-<agent>``: unique in the folder, the same on every
  import, and readable as the parent's child. Older Claude Code versions wrote
  ``agent-<agent>.jsonl`` next to the sessions; such a file is session
  ``agent-<agent>``, its parent the ``sessionId`` of its first line when that
  session is in the folder;
- ``pi`` (``~/.pi/agent/sessions/`` or one of its ``--<cwd>--`` folders): every
  ``*.jsonl`` below the folder, each under the id its header names (as a
  single-file import); a header's ``parentSession`` (the parent's file path,
  written by a fork) links it to that file's session when the file is in the folder.

The link to a parent is metadata: ``eventlog.parent_session_id`` (and, for a
Claude Code sub-agent, ``claude-code.agent``: its agent id and the contents of
its ``agent-<agent>.meta.json``). The store's own ``parent_session_id`` is set
by `Store.fork` only, which copies the parent's entries; a sub-agent's
transcript is not a copy of its parent, so it is not used.

Each file is one `import_file`: all or nothing for that file (or with
``skip_bad``, its bad lines skipped). A file that cannot be imported (a bad
line, an id conflict, unreadable) is reported with its name and line, and the
other files still import. Parents are imported before their sub-agents.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import msgspec

from ..errors import ConflictError, InvalidInputError
from ..model import JSONObject
from ..store import Store
from . import import_file
from ._lines import BadLine, decode_json
from ._results import ImportResult

__all__ = [
    "PARENT_KEY",
    "FileFailure",
    "FolderFile",
    "FolderResult",
    "folder_files",
    "import_folder",
]

PARENT_KEY: Final = "eventlog.parent_session_id"
AGENT_KEY: Final = "claude-code.agent"
_FIRST_LINE_BYTES: Final = 1 << 20
"""How much of a file is read to find its header or first line (pi, old Claude agents)."""
_META_BYTES: Final = 64 * 1024

_any_decoder = msgspec.json.Decoder(Any)


class FolderFile(msgspec.Struct, frozen=True):
    """One session file found in a folder, and what links it to a parent."""

    path: Path
    session_id: str | None
    """`None`: the id the file names (pi's header)."""
    metadata: JSONObject


class FileFailure(msgspec.Struct, frozen=True):
    """A file that did not import: nothing of it was written."""

    path: Path
    error: Exception


class FolderResult(msgspec.Struct, frozen=True):
    """What `import_folder` did, per file."""

    imported: tuple[ImportResult, ...]
    failed: tuple[FileFailure, ...]

    @property
    def entries(self) -> int:
        return sum(result.entries for result in self.imported)

    @property
    def appended(self) -> int:
        return sum(result.appended for result in self.imported)

    @property
    def skipped_bad(self) -> int:
        return sum(result.skipped_bad for result in self.imported)


def _first_json(path: Path) -> object:
    """The first line of a file, decoded, or `None` (missing, too long, not JSON)."""
    try:
        with path.open("rb") as stream:
            for line in stream:
                if line.strip():
                    if len(line) > _FIRST_LINE_BYTES:
                        return None
                    return decode_json(_any_decoder, line)
                if stream.tell() > _FIRST_LINE_BYTES:
                    return None
    except (OSError, BadLine):
        return None
    return None


def _meta(path: Path) -> object:
    try:
        if path.stat().st_size > _META_BYTES:
            return None
        return decode_json(_any_decoder, path.read_bytes())
    except (OSError, BadLine):
        return None


def _jsonl(folder: Path, recursive: bool) -> list[Path]:
    found = folder.rglob("*.jsonl") if recursive else folder.glob("*.jsonl")
    return sorted(path for path in found if path.is_file())


def _claude_files(folder: Path) -> Iterator[FolderFile]:
    top = _jsonl(folder, recursive=False)
    sessions = {path.stem for path in top}
    for path in top:
        if path.stem.startswith("agent-"):
            first = _first_json(path)
            parent = first.get("sessionId") if isinstance(first, dict) else None
            link: JSONObject = {AGENT_KEY: {"agentId": path.stem[len("agent-") :]}}
            if isinstance(parent, str) and parent in sessions:
                link[PARENT_KEY] = parent
            yield FolderFile(path, path.stem, link)
            continue
        yield FolderFile(path, path.stem, {})
        agents = path.parent / path.stem / "subagents"
        if not agents.is_dir():
            continue
        for agent in _jsonl(agents, recursive=True):
            if not agent.stem.startswith("agent-"):
                continue  # e.g. a workflow's journal.jsonl
            relative = agent.relative_to(folder).with_suffix("")
            details: JSONObject = {"agentId": agent.stem[len("agent-") :]}
            meta = _meta(agent.with_suffix(".meta.json"))
            if isinstance(meta, dict):
                details["meta"] = meta
            yield FolderFile(
                agent, relative.as_posix(), {PARENT_KEY: path.stem, AGENT_KEY: details}
            )


def _pi_files(folder: Path) -> Iterator[FolderFile]:
    files = _jsonl(folder, recursive=True)
    ids: dict[str, str] = {}
    parents: dict[Path, str] = {}
    for path in files:
        header = _first_json(path)
        if not isinstance(header, dict):
            continue
        sid = header.get("id")
        if header.get("type") == "session" and isinstance(sid, str) and sid:
            ids[path.name] = sid
            parent = header.get("parentSession")
            if isinstance(parent, str):
                parents[path] = parent
    # A fork names its parent by the path it had on the user's machine: match the file name.
    linked = {
        path: ids[os.path.basename(parent)]
        for path, parent in parents.items()
        if os.path.basename(parent) in ids
    }
    # Parents first: a file without a parent in the folder, then the others.
    for path in sorted(files, key=lambda path: path in linked):
        yield FolderFile(path, None, {PARENT_KEY: linked[path]} if path in linked else {})


_FINDERS: Final[dict[str, Callable[[Path], Iterator[FolderFile]]]] = {
    "claude-code": _claude_files,
    "pi": _pi_files,
}


def folder_files(format: str, folder: str | os.PathLike[str]) -> list[FolderFile]:
    """The session files of a folder, in import order (parents first).

    Raises:
        InvalidInputError: the format has no folder layout, or `folder` is not a folder.
    """
    finder = _FINDERS.get(format)
    if finder is None:
        raise InvalidInputError(
            f"format {format!r} has no folder import; use one of {', '.join(_FINDERS)}"
        )
    root = Path(folder)
    if not root.is_dir():
        raise InvalidInputError("not a folder", where=os.fspath(folder))
    return list(finder(root))


def import_folder(
    store: Store,
    format: str,
    folder: str | os.PathLike[str],
    *,
    skip_bad: bool = False,
    progress: Callable[[FolderFile], None] | None = None,
    files: Sequence[FolderFile] | None = None,
) -> FolderResult:
    """Import every session file of a folder (see the module docstring).

    Args:
        store: the target store.
        format: ``claude-code`` or ``pi``.
        folder: the folder.
        skip_bad: skip bad lines in each file (`import_file`).
        progress: called after each file, imported or not.
        files: what `folder_files` found in `folder`, if the caller has it already
            (the command line counts them for its bar): the folder is not read twice.

    Returns:
        The imports, and the files that failed with their (typed) errors.

    Raises:
        InvalidInputError: no folder layout for the format, or not a folder.
        StoreError: the store failed (not one file's fault): the import stops.
    """
    imported: list[ImportResult] = []
    failed: list[FileFailure] = []
    for found in folder_files(format, folder) if files is None else files:
        try:
            imported.append(
                import_file(
                    store,
                    format,
                    found.path,
                    session_id=found.session_id,
                    skip_bad=skip_bad,
                    extra_metadata=found.metadata or None,
                )
            )
        except (InvalidInputError, ConflictError, OSError) as error:
            failed.append(FileFailure(found.path, error))
        if progress is not None:
            progress(found)
    return FolderResult(tuple(imported), tuple(failed))
