"""Session file formats: read, write, import into and export from a store.

Formats (FORMATS.md describes each from its source):

- ``flue``: Flue ``SessionData`` JSON, both ways (`eventlog.formats.flue`);
- ``flue-stream``: a Flue 2.x conversation stream, its records as JSONL, both
  ways (`eventlog.formats.flue_stream`);
- ``pi``: pi-mono coding-agent session JSONL, both ways (`eventlog.formats.pi`);
- ``claude-code``: Claude Code session JSONL, both ways (`eventlog.formats.claude_code`);
- ``codex``: OpenAI Codex CLI rollout JSONL, import only (`eventlog.formats.codex`);
- ``opencode``: an OpenCode storage folder or database, many sessions, import
  only (`eventlog.formats.opencode.import_opencode`, not `import_file`);
- ``jsonl``: eventlog's own dump, a lossless backup of a session with its
  versions and tombstones (`eventlog.formats.dump`).

Imports stream: records are read one at a time into a temporary on-disk spool
and validated by the store's rules before the first write, together with the
final metadata and, for an existing session, every id against the stored ones;
then they are written with `save_delta` (`eventlog.formats._importer` says
when in one transaction, when in batches). A malformed record raises
`MalformedLineError` (file and line) and nothing of the session is written;
with ``skip_bad=True`` it is skipped and counted. An empty file is a
`MalformedLineError` in every format. Exports write a temporary file next to the target and
rename it, so a failed export leaves no file behind.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Final, Literal

from .._core.codec import DEFAULT_MAX_ENTRY_BYTES, check_session_id
from ..errors import InvalidInputError, SessionNotFoundError
from ..keyring import KeyProvider
from ..model import JSONObject, SessionData
from ..store import Store
from . import claude_code, codex, dump, flue, flue_stream, pi
from ._entry_checks import max_entry_bytes_of
from ._export import atomic_output
from ._importer import Attempt, collect, run_import
from ._lines import SYNTHETIC_PREFIX, LineReader, MalformedLineError, line_attempts
from ._results import ImportResult, ParsedSession

__all__ = [
    "FORMATS",
    "SYNTHETIC_PREFIX",
    "FormatName",
    "ImportResult",
    "MalformedLineError",
    "export_file",
    "import_file",
    "read_session",
    "write_session",
]

FormatName = Literal["flue", "flue-stream", "pi", "claude-code", "codex", "opencode", "jsonl"]
FORMATS: Final[tuple[str, ...]] = (
    "flue",
    "flue-stream",
    "pi",
    "claude-code",
    "codex",
    "opencode",
    "jsonl",
)
"""Every format name, in the order the command line lists them."""

DEFAULT_BATCH_SIZE: Final = 500

_Writer = Callable[..., None]
_WRITERS: Final[dict[str, _Writer]] = {
    "flue": flue.write,
    "flue-stream": flue_stream.write,
    "pi": pi.write,
    "claude-code": claude_code.write,
    "jsonl": dump.write_snapshot,
}
_LINE_READERS: Final[dict[str, Callable[..., LineReader]]] = {
    "flue-stream": flue_stream.FlueStreamReader,
    "pi": pi.PiReader,
    "claude-code": claude_code.ClaudeCodeReader,
    "codex": codex.CodexReader,
}
_HINTS: Final[dict[str, Callable[[bytes | None], str | None]]] = {
    "flue-stream": flue_stream.session_id_hint,
    "pi": pi.session_id_hint,
    "codex": codex.session_id_hint,
    "jsonl": dump.session_id_hint,
}


def _check_format(format: object) -> str:
    # Type first: an object that only compares equal to a name is not one.
    if not isinstance(format, str) or format not in FORMATS:
        raise InvalidInputError(f"unknown format {format!r}; use one of {', '.join(FORMATS)}")
    return format


def _one_file_format(format: object) -> str:
    name = _check_format(format)
    if name == "opencode":
        raise InvalidInputError(
            "opencode holds many sessions in a folder or database: "
            "use eventlog.formats.opencode.import_opencode"
        )
    return name


def _peek(stream: IO[bytes]) -> tuple[bytes | None, Iterator[bytes]]:
    """The first non-blank line, and every line again (the peeked one included)."""
    lines = iter(stream)
    skipped: list[bytes] = []
    for line in lines:
        skipped.append(line)
        if line.strip():
            body = line[:-1] if line.endswith(b"\n") else line
            return body, itertools.chain(skipped, lines)
    return None, iter(skipped)


def _sources(
    format: str,
    stream: IO[bytes],
    *,
    path: str,
    session_id: str | None,
    fallback_id: str,
    max_entry_bytes: int,
) -> tuple[str, Iterable[tuple[int, Attempt]], Callable[..., ParsedSession]]:
    """The session id, the record attempts and the finisher for a non-dump format."""
    if format == "flue":
        sid = check_session_id(session_id or fallback_id)
        reader = flue.FlueReader(sid, max_entry_bytes=max_entry_bytes, path=path)
        attempts = (
            (line, functools.partial(reader.feed, element))
            for line, element in flue.read_elements(stream, path, reader.on_field)
        )
        return sid, attempts, reader.finish
    first, lines = _peek(stream)
    if first is None:
        # As the Flue and dump readers do: a file without a record is not an empty session.
        raise MalformedLineError("the file is empty", path=path, line=1, session_id=session_id)
    hint = _HINTS[format](first) if format in _HINTS else None
    sid = check_session_id(session_id or hint or fallback_id)
    line_reader = _LINE_READERS[format](sid, max_entry_bytes=max_entry_bytes)
    return sid, line_attempts(line_reader, lines), line_reader.finish


def read_session(
    format: FormatName | str,
    stream: IO[bytes],
    *,
    session_id: str | None = None,
    skip_bad: bool = False,
    raw: bool = False,
) -> SessionData:
    """Read a whole session file into memory (for small files; `import_file` streams).

    Args:
        format: one of `FORMATS`.
        stream: a binary stream.
        session_id: the session id synthetic ids derive from (default: the
            one the file names, else ``"session"``).
        skip_bad: skip malformed records instead of raising.
        raw: give payloads and metadata as `RawJSON` bytes (as `Store.load` does).

    Raises:
        MalformedLineError: a record cannot be read.
    """
    name = _one_file_format(format)
    path = getattr(stream, "name", "<stream>")
    path = path if isinstance(path, str) else "<stream>"
    if name == "jsonl":
        return dump.read_latest(stream, path=path, session_id=session_id, raw=raw)
    sid, attempts, finish = _sources(
        name,
        stream,
        path=path,
        session_id=session_id,
        fallback_id="session",
        max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES,
    )
    return collect(attempts, finish, path=path, session_id=sid, skip_bad=skip_bad, raw=raw)


def write_session(
    format: FormatName | str,
    data: SessionData,
    stream: IO[bytes],
    *,
    session_id: str | None = None,
) -> None:
    """Write a session in a format (``jsonl`` writes a one-version dump).

    Raises:
        InvalidInputError: the format cannot be written (``codex``).
    """
    name = _check_format(format)
    writer = _WRITERS.get(name)
    if writer is None:
        raise InvalidInputError(f"format {name!r} can be imported, not exported")
    writer(data, stream, session_id=session_id)


def _with_metadata(
    finish: Callable[..., ParsedSession], extra: JSONObject
) -> Callable[..., ParsedSession]:
    """`finish`, its metadata extended by `extra` (a folder import's links)."""

    def finished(known: Callable[[str], bool]) -> ParsedSession:
        parsed: ParsedSession = finish(known)
        parsed.metadata = {**parsed.metadata, **extra}
        return parsed

    return finished


def import_file(
    store: Store,
    format: FormatName | str,
    path: str | os.PathLike[str],
    *,
    session_id: str | None = None,
    skip_bad: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_purged_versions: int = dump.MAX_PURGED_VERSIONS,
    progress: Callable[[int], None] | None = None,
    extra_metadata: JSONObject | None = None,
    keyring: KeyProvider | None = None,
) -> ImportResult:
    """Import a session file into a store, streaming.

    Args:
        store: the target store.
        format: one of `FORMATS`.
        path: the file.
        session_id: the target session (default: the id the file names, else
            the file name without its extension).
        skip_bad: skip malformed records and count them instead of raising
            (not for ``jsonl`` dumps, which restore all or nothing).
        batch_size: entries per `save_delta` where the import is written in
            batches: into a new session, or into an existing one beyond 64 MiB
            (up to that, an existing session gets one transaction).
        max_purged_versions: a ``jsonl`` dump whose history was purged is restored
            with one placeholder write per purged version; more than this many
            is refused (`InvalidInputError`) before anything is written.
        progress: called after each write with the number of entries it stored
            (appended or found already stored), e.g. to advance a progress bar.
        extra_metadata: keys added to the session's metadata (not for
            ``jsonl``), e.g. the parent links a folder import records.
        keyring: what opens a sealed ``jsonl`` dump (only for ``jsonl``).

    Returns:
        What was read, written and skipped.

    Raises:
        MalformedLineError: a malformed record or an empty file (nothing written).
        InvalidPayloadError: the final metadata breaks the store's rules (nothing written).
        IdConflictError: the session holds one of the ids with other content.
        InvalidLeafError: the file's leaf would not be live (an id the session removed).
        SessionExistsError: a ``jsonl`` dump's target session exists.
        DecryptionError: a sealed dump that `keyring` cannot open (nothing written).
        ConcurrencyError: another client kept writing to the session; what it
            wrote is kept (a new session is deleted again only if nobody else wrote).
    """
    name = _one_file_format(format)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError("batch_size must be a positive int")
    if keyring is not None and name != "jsonl":
        raise InvalidInputError("keyring applies to a jsonl dump only")
    label = os.fspath(path)
    with open(path, "rb") as stream:
        if name == "jsonl":
            if skip_bad:
                raise InvalidInputError("skip_bad does not apply to a jsonl dump")
            if extra_metadata:
                raise InvalidInputError("extra_metadata does not apply to a jsonl dump")
            restored = dump.restore(
                store,
                stream,
                path=label,
                session_id=session_id,
                max_purged_versions=max_purged_versions,
                progress=progress,
                keyring=keyring,
            )
            return ImportResult(
                session_id=restored.session_id,
                entries=restored.entry_lines,
                appended=restored.entry_lines,
                already_stored=0,
                tombstoned=0,
                skipped_bad=0,
                bad_lines=(),
                version=restored.version,
                leaf_id=restored.leaf_id,
            )
        sid, attempts, finish = _sources(
            name,
            stream,
            path=label,
            session_id=session_id,
            fallback_id=Path(label).stem,
            max_entry_bytes=max_entry_bytes_of(store),
        )
        if extra_metadata:
            finish = _with_metadata(finish, extra_metadata)
        return run_import(
            store,
            attempts,
            finish,
            path=label,
            session_id=sid,
            skip_bad=skip_bad,
            batch_size=batch_size,
            progress=progress,
        )


def export_file(
    store: Store,
    format: FormatName | str,
    session_id: str,
    path: str | os.PathLike[str],
    *,
    progress: Callable[[int], None] | None = None,
    keyring: KeyProvider | None = None,
) -> None:
    """Export a session to a file, atomically (a temporary file, then a rename).

    Args:
        store: the source store.
        format: one of `FORMATS` but ``codex``.
        session_id: the session to export.
        path: the target file.
        progress: called with the number of entries read from the store, after
            each read (a ``jsonl`` dump reads every kept version).
        keyring: write a sealed ``jsonl`` dump (only for ``jsonl``): every line
            after the header sealed under a dump key this keyring wraps. Every
            other export holds the session in plaintext.

    Raises:
        SessionNotFoundError: no such session.
        InvalidInputError: the format cannot be written (``codex``), or a
            keyring for another format than ``jsonl``.
        KeyProviderError: the keyring (a KMS) failed; no file was written.
    """
    name = _check_format(format)
    if keyring is not None and name != "jsonl":
        raise InvalidInputError("keyring applies to a jsonl dump only")
    if name == "jsonl":
        with atomic_output(path) as stream:
            dump.dump(store, session_id, stream, progress=progress, keyring=keyring)
        return
    writer = _WRITERS.get(name)
    if writer is None:
        raise InvalidInputError(f"format {name!r} can be imported, not exported")
    data = store.load(session_id, raw=True)
    if data is None:
        raise SessionNotFoundError("no such session", session_id=session_id)
    if progress is not None:
        progress(len(data.entries))
    with atomic_output(path) as stream:
        writer(data, stream, session_id=session_id)
