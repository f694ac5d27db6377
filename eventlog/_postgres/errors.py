"""psycopg errors as eventlog errors, by class and SQLSTATE (never by message text)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors

from ..errors import (
    AccessDeniedError,
    CommitOutcomeUnknownError,
    ConcurrencyError,
    CorruptionError,
    EventlogError,
    StatementCancelledError,
    StoreError,
    StoreUnavailableError,
)

__all__ = ["connect_error", "translated", "translation"]


def _server_reason(exc: BaseException) -> str:
    # The first line of libpq's message names the cause (host, auth, database);
    # it never holds a password or row values (those are in DETAIL, not used).
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# Keyed by SQLSTATE, as psycopg's errors.lookup is: never by message text.
_CANCEL_REASONS: Final = {
    pg_errors.QueryCanceled.sqlstate: "a statement timeout or a cancel request",
    pg_errors.LockNotAvailable.sqlstate: "a lock timeout",
}


def translation(
    exc: psycopg.Error, session_id: str | None = None, *, committing: bool = False
) -> EventlogError:
    """The eventlog error for a psycopg error, chosen by its class (so by SQLSTATE).

    Args:
        committing: the statement was COMMIT; a lost connection there leaves the
            outcome unknown.
    """
    if isinstance(exc, psycopg_pool.PoolTimeout):
        return StoreUnavailableError(
            "no database connection became free within the pool timeout", session_id=session_id
        )
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return ConcurrencyError(
            "the write conflicted with a concurrent one; retry it", session_id=session_id
        )
    code = exc.sqlstate
    if isinstance(exc, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
        # OperationalErrors, but the connection is fine and nothing landed: the
        # statement's transaction aborted. That holds in a COMMIT too: the server
        # takes no cancel once the commit record is written (a cancelled wait for
        # a synchronous standby is only a warning).
        reason = _CANCEL_REASONS.get(code or "", "cancelled")
        return StatementCancelledError(
            f"the database cancelled the statement ({reason}, SQLSTATE {code}); "
            "nothing was written and retrying is safe",
            session_id=session_id,
            sqlstate=code,
        )
    kind: type[StoreError] = StoreError
    message = f"PostgreSQL failed: {type(exc).__name__} (SQLSTATE {code or '-'})"
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        # 42501, by class: a missing right, and a row-level security policy refusing
        # a written row (WITH CHECK) alike. The server's text is not used.
        kind = AccessDeniedError
        message = (
            "the database refused: the connected role lacks the right, or a row-level "
            f"security policy refused the row (SQLSTATE {code})"
        )
    elif isinstance(exc, pg_errors.IntegrityError):
        kind, message = CorruptionError, f"a stored invariant was violated ({type(exc).__name__})"
    elif isinstance(exc, psycopg.OperationalError) and committing:
        kind = CommitOutcomeUnknownError
        message = (
            "the connection was lost while committing; the write may or may not have "
            "landed, and retrying it is safe"
        )
    elif isinstance(exc, psycopg.OperationalError):
        kind, message = StoreUnavailableError, f"the database is unavailable: {_server_reason(exc)}"
    return kind(message, session_id=session_id, code=code)


@contextmanager
def translated(session_id: str | None = None, *, committing: bool = False) -> Iterator[None]:
    """Turn psycopg errors raised in the block into eventlog errors (see `translation`);
    messages never carry row values."""
    try:
        yield
    except EventlogError:
        raise
    except psycopg.Error as exc:
        raise translation(exc, session_id, committing=committing) from None


def connect_error(exc: psycopg.Error) -> StoreUnavailableError:
    """A clear error for a failed first connection: what to fix."""
    return StoreUnavailableError(
        f"cannot connect to PostgreSQL: {_server_reason(exc)}", code=exc.sqlstate
    )
