"""The sync store: a thin driver that runs `operations` on a backend's transactions.

A backend subclasses `LogStore` and supplies `_read()`/`_write()` context
managers yielding a `Transaction` (storage reads and writes, no decisions).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from . import operations
from ._log import logger
from .codec import DEFAULT_MAX_ENTRY_BYTES
from .errors import EventlogError, InvalidConfigError
from .model import Entry, Page, SaveResult, SessionData, SessionDelta, SessionInfo
from .operations import Operation, Steps, Transaction, VersionRow

__all__ = [
    "MAX_TIMEOUT_SECONDS",
    "LogStore",
    "Transaction",
    "VersionRow",
    "check_flag",
    "check_max_entry_bytes",
    "check_seconds",
    "drive",
    "iter_chunks",
    "log_operation",
    "prefix_successor",
    "settle_error",
]

T = TypeVar("T")


def check_max_entry_bytes(max_entry_bytes: object) -> int:
    """Validate the `max_entry_bytes` option."""
    if (
        isinstance(max_entry_bytes, bool)
        or not isinstance(max_entry_bytes, int)
        or (max_entry_bytes < 1)
    ):
        raise InvalidConfigError("max_entry_bytes must be a positive int")
    return max_entry_bytes


def settle_error(error: EventlogError, operation: Operation[Any]) -> None:
    """Make an error leaving `operation` fit to show: no driver context, its session named."""
    # A translated driver error keeps no driver exception as its context: a
    # Postgres DETAIL may hold row values.
    error.__context__ = None
    # Storage reads (a damaged row found while decoding) know the entry, not the call.
    if error.session_id is None and operation.session_id:
        error.session_id = operation.session_id


# The longest wait an option may ask for: SQLite's busy timeout is an int of
# milliseconds (a larger value wraps to "do not wait"), libpq's connect_timeout
# an int of seconds.
MAX_TIMEOUT_SECONDS: Final = 2_147_483


def check_seconds(name: str, value: object, *, zero: bool) -> float:
    """Validate a timeout option: a finite number of seconds (above 0 unless `zero`).

    Raises:
        InvalidConfigError: not a real number, NaN, infinite, negative or too large.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidConfigError(f"{name} must be a number of seconds")
    # Compared before any float(): a huge int would overflow it; NaN fails both sides.
    if not (0 <= value <= MAX_TIMEOUT_SECONDS) or (value == 0 and not zero):
        low = "0" if zero else "above 0"
        raise InvalidConfigError(
            f"{name} must be a number of seconds from {low} to {MAX_TIMEOUT_SECONDS}"
        )
    return float(value)


def check_flag(name: str, value: object) -> bool:
    """Validate a bool option (a string such as ``"no"`` would count as true)."""
    if not isinstance(value, bool):
        raise InvalidConfigError(f"{name} must be True or False")
    return value


def log_operation(operation: Operation[Any], result: object, started: float) -> None:
    """One debug line per operation: ids, counts and timing, never payloads."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    fields: dict[str, Any] = {}
    if isinstance(result, SaveResult):
        fields = {
            "entries": len(result.appended),
            "skipped": len(result.skipped),
            "tombstoned": len(result.tombstoned),
            "version": result.version,
        }
    elif isinstance(result, SessionData):
        fields = {"entries": len(result.entries), "version": result.version}
    elif isinstance(result, list | Page):
        fields = {"entries": len(result) if isinstance(result, list) else len(result.items)}
    logger.debug(
        operation.name,
        session_id=operation.session_id,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        **fields,
    )


class LogStore(ABC):
    """A `Store` built on a backend's transactions."""

    def __init__(self, *, max_entry_bytes: int | None = None) -> None:
        self.max_entry_bytes = check_max_entry_bytes(
            DEFAULT_MAX_ENTRY_BYTES if max_entry_bytes is None else max_entry_bytes
        )
        self._closed = False

    @abstractmethod
    def _write(self) -> AbstractContextManager[Transaction]:
        """A write transaction: committed on a clean exit, rolled back on an error."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Transaction]:
        """A read transaction seeing one consistent snapshot."""

    @abstractmethod
    def _close(self) -> None:
        """Release the backend's resources."""

    def _run(self, operation: Operation[T]) -> T:
        started = time.perf_counter()
        try:
            result = self._execute(operation)
        except EventlogError as error:
            settle_error(error, operation)
            raise
        log_operation(operation, result, started)
        return result

    def _execute(self, operation: Operation[T]) -> T:
        """Run the operation's steps in one transaction of its mode."""
        with self._write() if operation.mode == "write" else self._read() as tx:
            return drive(operation.steps(), tx)

    def save_delta(
        self, session_id: str, delta: SessionDelta, /, *, expected_version: int | None = None
    ) -> SaveResult:
        return self._run(
            operations.save_delta(
                session_id,
                delta,
                expected_version=expected_version,
                max_entry_bytes=self.max_entry_bytes,
            )
        )

    def save(
        self, session_id: str, data: SessionData, /, *, expected_version: int | None = None
    ) -> SaveResult:
        return self._run(
            operations.save(
                session_id,
                data,
                expected_version=expected_version,
                max_entry_bytes=self.max_entry_bytes,
            )
        )

    def load(
        self, session_id: str, /, *, at_version: int | None = None, raw: bool = False
    ) -> SessionData | None:
        return self._run(operations.load(session_id, at_version=at_version, raw=raw))

    def path(self, session_id: str, /, *, leaf_id: str | None = None) -> list[Entry]:
        return self._run(operations.path(session_id, leaf_id=leaf_id))

    def list_sessions(
        self,
        *,
        prefix: str | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        return self._run(
            operations.list_sessions(
                prefix=prefix, updated_before=updated_before, limit=limit, cursor=cursor
            )
        )

    def delete(self, session_id: str, /, *, expected_version: int | None = None) -> bool:
        return self._run(operations.delete(session_id, expected_version=expected_version))

    def fork(
        self, source_id: str, new_id: str, /, *, at_entry_id: str | None = None
    ) -> SessionInfo:
        return self._run(operations.fork(source_id, new_id, at_entry_id=at_entry_id))

    def purge(self, session_id: str, /) -> int:
        return self._run(operations.purge(session_id))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def drive(steps: Steps[T], tx: Transaction) -> T:
    """Run an operation's steps on a transaction; returns what the steps return."""
    try:
        call = next(steps)
        while True:
            call = steps.send(getattr(tx, call.method)(*call.args, **call.kwargs))
    except StopIteration as done:
        result: T = done.value
        return result


def iter_chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Split ids into chunks small enough for one `IN (...)` list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def prefix_successor(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (None: no bound).

    Strings compare by code point (UTF-8 byte order), so incrementing the last
    character that can be incremented gives the bound.
    """
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return "".join(chars) + chr(point)
    return None
