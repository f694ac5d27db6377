"""What every exporter shares: the entries' order, timestamps, the atomic output file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import IO, Final

from .._core.branch import branch_to
from ..model import Entry, SessionData

__all__ = ["atomic_output", "export_order", "iso_ms"]


def iso_ms(moment: datetime | None) -> str | None:
    """A datetime as JavaScript's ``toISOString`` writes it (UTC, milliseconds, ``Z``)."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def export_order(data: SessionData, tip: Callable[[list[Entry]], str | None]) -> list[Entry]:
    """The entries in log order, unless that would make the target tool resume elsewhere.

    Tools without a stored leaf take the last line as the tip. When `tip` (the
    tool's rule) applied to the log order does not give `data.leaf_id`, the
    entries off the active branch are written first (in log order) and the
    branch last, root to leaf.
    """
    entries = list(data.entries)
    if data.leaf_id is None or tip(entries) == data.leaf_id:
        return entries
    branch = branch_to({entry.id: entry for entry in entries}, data.leaf_id)
    on_branch = {entry.id for entry in branch}
    return [entry for entry in entries if entry.id not in on_branch] + branch


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary file that appears at `path` whole, or not at all.

    A regular file (or a new one) is written to a temporary file in the same
    directory, flushed to disk, then moved over `path` with `os.replace`; it keeps
    the mode of the file it replaces, and a new one gets the umask's. A symlink is
    followed: the file it points to is replaced, the link stays. A target that
    exists and is not a regular file (a FIFO, a device such as /dev/null, a
    terminal), or a path naming an open descriptor (/dev/stdout, /dev/fd/N,
    /proc/self/fd/N), is written into, never replaced: the output is spooled to
    an anonymous temporary file and appended to it once complete. On any error
    before that, `path` is left as it was and no temporary file remains.
    """
    target = _replaced_file(Path(path))
    if target is None:
        with tempfile.TemporaryFile() as spool:
            yield spool
            spool.seek(0)
            # O_APPEND: a descriptor's file (`-o /dev/stdout >> log`) keeps what it holds.
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND), "wb") as sink:
                while chunk := spool.read(1 << 20):
                    sink.write(chunk)
        return
    temp_name = target.with_name(f".{target.name}.{os.urandom(8).hex()}.tmp")
    # Mode 0o666 lets the umask decide, as for any new file (mkstemp would force 0o600).
    handle = os.open(temp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            with suppress(FileNotFoundError):
                os.fchmod(stream.fileno(), os.stat(target).st_mode & 0o777)
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise


_MAX_LINKS: Final = 40  # as the kernel's limit on symlinks followed in one path


def _replaced_file(path: Path) -> Path | None:
    """The regular file (existing or new) that `path` names, or None to write into `path`."""
    current = Path(os.path.realpath(path.parent)) / path.name
    for _ in range(_MAX_LINKS):
        # /proc/<pid>/fd/N (where /dev/stdout and /dev/fd/N lead) names an open
        # descriptor, whose link text is not a path to replace; nothing under /proc is.
        if current.parts[1:2] == ("proc",):
            return None
        if not current.is_symlink():
            break
        link = current.parent / os.readlink(current)
        current = Path(os.path.realpath(link.parent)) / link.name
    if current.is_symlink() or (current.exists() and not current.is_file()):
        return None  # too many links (the open fails with ELOOP), or a FIFO, device, ...
    return current
