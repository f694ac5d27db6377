"""The eventlog error hierarchy.

Every error raised through the public API is an `EventlogError`. Errors carry
structured fields (`session_id`, `entry_id`, `where`) and pickle with them; their
messages never include payload or metadata text.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AccessDeniedError",
    "CommitOutcomeUnknownError",
    "ConcurrencyError",
    "ConflictError",
    "CorruptionError",
    "DecryptionError",
    "EventlogError",
    "HistoryPurgedError",
    "IdConflictError",
    "InvalidConfigError",
    "InvalidIdError",
    "InvalidInputError",
    "InvalidLeafError",
    "InvalidPayloadError",
    "KeyProviderError",
    "PayloadTooLargeError",
    "SchemaVersionError",
    "SessionExistsError",
    "SessionNotFoundError",
    "StatementCancelledError",
    "StoreError",
    "StoreUnavailableError",
]

_SHOWN_ID_CHARS = 80


def show_id(value: object) -> str:
    """Render an id for a message: repr'd, cut short, never a payload."""
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    if len(value) > _SHOWN_ID_CHARS:
        return repr(value[:_SHOWN_ID_CHARS]) + f"... ({len(value)} chars)"
    return repr(value)


class EventlogError(Exception):
    """Base of every error eventlog raises.

    Attributes:
        session_id: the session the failed call was about, if any.
        entry_id: the entry at fault, if any.
        where: the location in the input, e.g. ``entries[3].parent_id``.
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        entry_id: str | None = None,
        where: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.session_id = session_id
        self.entry_id = entry_id
        self.where = where

    def _fields(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "entry_id": self.entry_id, "where": self.where}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._fields()))

    def __str__(self) -> str:
        context = []
        if self.session_id is not None:
            context.append(f"session {show_id(self.session_id)}")
        if self.entry_id is not None:
            context.append(f"entry {show_id(self.entry_id)}")
        if self.where is not None:
            context.append(f"in {self.where}")
        if not context:
            return self.message
        return f"{self.message} ({', '.join(context)})"


def _rebuild(cls: type[EventlogError], message: str, fields: dict[str, Any]) -> EventlogError:
    error = cls.__new__(cls)
    EventlogError.__init__(error, message)
    for name, value in fields.items():
        setattr(error, name, value)
    return error


class InvalidInputError(EventlogError, ValueError):
    """The call's arguments break a rule of the data model; nothing was written."""


class InvalidIdError(InvalidInputError):
    """A session or entry id is not a 1..255 byte UTF-8 string without NUL."""


class InvalidPayloadError(InvalidInputError):
    """A payload or metadata value is not an allowed JSON object."""


class PayloadTooLargeError(InvalidPayloadError):
    """An encoded entry (or metadata) is larger than the configured limit."""


class InvalidLeafError(InvalidInputError):
    """The leaf (or fork point) is not a live entry after the write."""


class ConflictError(EventlogError):
    """The write conflicts with what is stored; nothing was written."""


class ConcurrencyError(ConflictError):
    """`expected_version` did not match the stored version."""

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        expected_version: int | None = None,
        actual_version: int | None = None,
    ) -> None:
        super().__init__(message, session_id=session_id)
        self.expected_version = expected_version
        self.actual_version = actual_version

    def _fields(self) -> dict[str, Any]:
        fields = super()._fields()
        fields["expected_version"] = self.expected_version
        fields["actual_version"] = self.actual_version
        return fields


class IdConflictError(ConflictError):
    """An entry id is already stored (or given twice) with different content."""


class SessionExistsError(ConflictError):
    """The target session of a fork already exists."""


class StoreError(EventlogError):
    """The storage itself failed or is not usable.

    Attributes:
        code: the driver's code for the failure, when a driver error caused it: the
            SQLSTATE on PostgreSQL (``40001``), the result code's name on SQLite
            (``SQLITE_BUSY``). Never row values.
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        entry_id: str | None = None,
        where: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, session_id=session_id, entry_id=entry_id, where=where)
        self.code = code

    def _fields(self) -> dict[str, Any]:
        fields = super()._fields()
        fields["code"] = self.code
        return fields

    def __repr__(self) -> str:
        if self.code is None:
            return super().__repr__()
        return f"{type(self).__name__}({self.message!r}, code={self.code!r})"


class StoreUnavailableError(StoreError):
    """The database cannot be reached or opened."""


class CommitOutcomeUnknownError(StoreError):
    """The connection dropped during COMMIT; retrying the same write is safe."""


class StatementCancelledError(StoreError):
    """The database cancelled a statement (a statement or lock timeout, or a cancel request).

    Nothing was written and the connection is still usable; retrying the call is
    safe. `sqlstate` is the server's code: ``57014`` (query_canceled) or ``55P03``
    (lock_not_available).
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        entry_id: str | None = None,
        where: str | None = None,
        sqlstate: str | None = None,
    ) -> None:
        super().__init__(
            message, session_id=session_id, entry_id=entry_id, where=where, code=sqlstate
        )

    @property
    def sqlstate(self) -> str | None:
        """The server's code; the same value as `code`, which pickles it."""
        return self.code


class CorruptionError(StoreError):
    """Stored data breaks an invariant (for example a parent cycle)."""


class SchemaVersionError(StoreError):
    """The database schema is newer than this eventlog, or not eventlog's."""


class AccessDeniedError(StoreError):
    """The database refused the statement: SQLSTATE ``42501`` (insufficient_privilege).

    The connected role lacks a right the statement needs (eventlog's app role
    cannot change the schema, TRUNCATE, or rewrite a stored entry), or a
    row-level security policy refused a row it would write. Nothing was written.
    `code` holds the SQLSTATE.
    """


class DecryptionError(StoreError):
    """A sealed payload or metadata value could not be opened (DESIGN.md section 8).

    The store has no keyring, the keyring lacks the key id the session's data
    key is wrapped with, the key is wrong, or a stored byte changed (including
    a ciphertext copied from another row, session or tenant). Names the session
    and, for a payload, the entry; never a key or any plaintext. Nothing is
    skipped: the read that met it fails as a whole.
    """


class KeyProviderError(StoreError):
    """The key provider (a KMS behind a `KeyProvider`) failed: unreachable, access
    denied, or any other error of its own, or it answered with something that is
    not a key (DESIGN.md section 8).

    Nothing was written. The message and `code` name only the type of the
    provider's exception (which is chained as the cause, for diagnosis); never
    a key. A wrong or unknown key is a `DecryptionError`, not this.
    """


class SessionNotFoundError(EventlogError, LookupError):
    """The session does not exist."""


class HistoryPurgedError(EventlogError, LookupError):
    """The requested version's history was dropped by `purge`."""


class InvalidConfigError(EventlogError, ValueError):
    """A URL or option given to `connect` is not usable."""
