"""sqlite3 errors as eventlog errors, by SQLite's result code (never by message text).

The message of an eventlog error never holds row values: for the codes whose
SQLite text names a file condition (``unable to open database file``) that
text is kept, as it says what to fix; otherwise only the code is said.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from ..errors import CorruptionError, EventlogError, StoreError, StoreUnavailableError

__all__ = ["translated", "translation"]

# Primary result codes (https://sqlite.org/rescode.html); an extended code
# carries its primary one in the low byte.
_BUSY: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_FILE: Final = frozenset(
    {
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_PERM,
    }
)
_NOT_A_DATABASE: Final = frozenset({sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT})


def translation(exc: sqlite3.Error, session_id: str | None = None) -> StoreError:
    """The eventlog error for a sqlite3 error; its `code` is SQLite's result code name."""
    errorcode: int | None = getattr(exc, "sqlite_errorcode", None)
    code: str | None = getattr(exc, "sqlite_errorname", None)
    primary = None if errorcode is None else errorcode & 0xFF
    if primary in _BUSY:
        return StoreUnavailableError(
            "the database stayed locked past the busy timeout", session_id=session_id, code=code
        )
    if primary in _FILE:
        return StoreUnavailableError(
            f"cannot use the database file: {exc}", session_id=session_id, code=code
        )
    if primary == sqlite3.SQLITE_CONSTRAINT:
        return CorruptionError(
            "a stored invariant was violated (constraint failed)", session_id=session_id, code=code
        )
    if primary in _NOT_A_DATABASE:
        return CorruptionError(
            f"the file is not a usable SQLite database: {exc}", session_id=session_id, code=code
        )
    return StoreError(f"SQLite failed: {type(exc).__name__}", session_id=session_id, code=code)


@contextmanager
def translated(session_id: str | None = None) -> Iterator[None]:
    """Turn sqlite3 errors raised in the block into eventlog errors."""
    try:
        yield
    except EventlogError:
        raise
    except sqlite3.Error as exc:
        raise translation(exc, session_id) from None
