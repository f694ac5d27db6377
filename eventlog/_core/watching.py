"""What `watch` decides, free of IO: its arguments, where a watcher stands, when it ends.

A watcher reads the session's index row (`position`), reads `changes` after
the last version it yielded until it has caught up, then waits for a wake-up
and reads again. It ends when the session is gone: no row, or a row created
at another moment (deleted and created again: not the session it watched).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Final

import msgspec

from ..errors import InvalidInputError
from .codec import check_session_id
from .operations import Operation
from .storage_requests import State, Steps

__all__ = [
    "CHANNEL",
    "PAGE_SIZE",
    "RETRY_FOR_S",
    "SAFETY_READ_S",
    "Position",
    "WatchCursor",
    "check_watch",
    "position",
    "watch_key",
]

# Versions read per `changes` call while a watcher catches up.
PAGE_SIZE: Final = 100
# A watcher reads again this often even without a wake-up: it covers a lost
# notification (a dropped listener connection, a write from a store that
# could not notify) at the cost of one index-row read per second per watcher.
SAFETY_READ_S: Final = 1.0
# A watcher whose reads fail with StoreUnavailableError (a server restart)
# keeps trying for this long before the error leaves the iterator.
RETRY_FOR_S: Final = 60.0
# The one PostgreSQL notification channel of every eventlog store.
CHANNEL: Final = "eventlog_changes"


def watch_key(session_id: str, tenant: str = "") -> str:
    """The name of a session in notifications: a short digest, never the id in clear.

    Anyone allowed to LISTEN on the database sees the notifications; what they
    see is 16 hex digits per write. The digest covers the tenant too, so a
    watcher of one tenant's session is not woken by another tenant's session of
    the same id (the default tenant's keys are those of before tenants). Distinct
    sessions may share a key: a watcher always reads, in its own tenant, to find
    out whether its session changed.
    """
    # NUL is in no id (tenant ids follow the session id rules), so the joined
    # text names one (tenant, session) pair.
    named = session_id if tenant == "" else f"{tenant}\x00{session_id}"
    digest = hashlib.blake2b(named.encode(), digest_size=8, person=b"eventlog.watch")
    return digest.hexdigest()


def check_watch(session_id: object, after_version: object) -> tuple[str, int]:
    """Validate `watch`'s arguments at the call, before any iteration.

    Raises:
        InvalidIdError: a bad session id.
        InvalidInputError: `after_version` is not an int >= 0 (a bool is not one).
    """
    sid = check_session_id(session_id)
    if isinstance(after_version, bool) or not isinstance(after_version, int) or after_version < 0:
        raise InvalidInputError(
            "after_version must be an int >= 0", session_id=sid, where="after_version"
        )
    return sid, after_version


class Position(msgspec.Struct, frozen=True):
    """Where a session stands: its version, and when it was created (which session it is)."""

    version: int
    created_at: datetime


def position(session_id: str) -> Operation[Position | None]:
    """Read the session's index row alone: its position, or None if it does not exist."""

    def steps() -> Steps[Position | None]:
        state = yield from State(session_id)
        return None if state is None else Position(state.version, state.created_at)

    return Operation("watch", session_id, "read", steps)


class WatchCursor:
    """A watcher's place: the last version it yielded, and the session it watches."""

    def __init__(self, after_version: int) -> None:
        self.last = after_version
        self._created_at: datetime | None = None

    def ended(self, where: Position | None) -> bool:
        """Whether the watched session is gone (missing, or deleted and created again)."""
        if where is None:
            return True
        if self._created_at is None:
            self._created_at = where.created_at
        return where.created_at != self._created_at

    def behind(self, where: Position) -> bool:
        """Whether the session has versions this watcher has not yielded."""
        return where.version > self.last
