"""The sync operations of DESIGN.md section 2, over a backend's transactions.

`LogStore` validates input (codec), opens a transaction, reads what a call
concerns, asks `fold` what to write and hands the plan back to the
transaction. A backend supplies only `Transaction`: storage reads and writes
with no decisions in them.
"""

from __future__ import annotations

import base64
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

import msgspec

from . import fold
from ._log import logger
from .codec import (
    DEFAULT_MAX_ENTRY_BYTES,
    check_entry_id,
    check_session_id,
    prepare_delta,
    prepare_snapshot,
)
from .errors import (
    HistoryPurgedError,
    InvalidConfigError,
    InvalidInputError,
    SessionExistsError,
    SessionNotFoundError,
)
from .fold import Record, SessionState, WritePlan
from .model import Entry, Page, SaveResult, SessionData, SessionDelta, SessionInfo

__all__ = ["LogStore", "Transaction", "VersionRow"]


class VersionRow(msgspec.Struct, frozen=True):
    """A session as of one version: its leaf, metadata and when it was written."""

    leaf_id: str | None
    metadata: bytes
    created_at: datetime


class Transaction(Protocol):
    """Storage reads and writes of one backend transaction; no decisions."""

    def state(self, session_id: str) -> SessionState | None:
        """The session's index row; in a write transaction, the row is locked."""
        ...

    def latest_records(self, session_id: str, entry_ids: Sequence[str]) -> dict[str, Record]:
        """The newest record of each id that has one (live or not); payloads may be empty."""
        ...

    def live_records(self, session_id: str, *, payloads: bool) -> list[Record]:
        """The live records in `seq` order; with `payloads=False` payloads may be empty."""
        ...

    def records_at(self, session_id: str, version: int) -> list[Record]:
        """The records live right after `version`, in `seq` order."""
        ...

    def version_row(self, session_id: str, version: int) -> VersionRow | None:
        """Leaf, metadata and write time as of `version`."""
        ...

    def apply(self, plan: WritePlan) -> None:
        """Write a changed plan (see `WritePlan` for the order)."""
        ...

    def delete(self, session_id: str) -> bool:
        """Remove every row of the session."""
        ...

    def purge(self, state: SessionState) -> int:
        """Drop non-live records and history before `state.version`; return records dropped."""
        ...

    def list_states(
        self,
        *,
        prefix: str | None,
        updated_before: datetime | None,
        after: str | None,
        limit: int,
    ) -> list[SessionState]:
        """Index rows in session-id order, after the id `after`."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


def _encode_cursor(session_id: str) -> str:
    return base64.urlsafe_b64encode(session_id.encode("utf-8")).decode("ascii")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        raise InvalidInputError(
            "cursor is not one list_sessions returned", where="cursor"
        ) from None


class LogStore(ABC):
    """A `Store` built on a backend's transactions."""

    def __init__(self, *, max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES) -> None:
        if not isinstance(max_entry_bytes, int) or max_entry_bytes < 1:
            raise InvalidConfigError("max_entry_bytes must be a positive int")
        self.max_entry_bytes = max_entry_bytes
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

    def _log_op(self, op: str, session_id: str, started: float, **fields: object) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                op,
                session_id=session_id,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                **fields,
            )

    # -- writes -------------------------------------------------------------

    def save_delta(
        self, session_id: str, delta: SessionDelta, /, *, expected_version: int | None = None
    ) -> SaveResult:
        started = time.perf_counter()
        session_id = check_session_id(session_id)
        _check_expected(session_id, expected_version)
        prepared = prepare_delta(session_id, delta, max_entry_bytes=self.max_entry_bytes)
        with self._write() as tx:
            state = tx.state(session_id)
            latest = tx.latest_records(session_id, fold.delta_lookup_ids(prepared, state))
            plan = fold.plan_delta(
                session_id, prepared, state, latest, expected_version=expected_version, now=_now()
            )
            if plan.changed:
                tx.apply(plan)
        self._log_op(
            "save_delta",
            session_id,
            started,
            entries=len(prepared.new_entries),
            version=plan.result.version,
        )
        return plan.result

    def save(
        self, session_id: str, data: SessionData, /, *, expected_version: int | None = None
    ) -> SaveResult:
        started = time.perf_counter()
        session_id = check_session_id(session_id)
        _check_expected(session_id, expected_version)
        prepared = prepare_snapshot(session_id, data, max_entry_bytes=self.max_entry_bytes)
        with self._write() as tx:
            state = tx.state(session_id)
            live = [] if state is None else tx.live_records(session_id, payloads=False)
            plan = fold.plan_reconcile(
                session_id, prepared, state, live, expected_version=expected_version, now=_now()
            )
            if plan.changed:
                tx.apply(plan)
        self._log_op(
            "save", session_id, started, entries=len(prepared.entries), version=plan.result.version
        )
        return plan.result

    # -- reads --------------------------------------------------------------

    def load(
        self, session_id: str, /, *, at_version: int | None = None, raw: bool = False
    ) -> SessionData | None:
        started = time.perf_counter()
        session_id = check_session_id(session_id)
        with self._read() as tx:
            state = tx.state(session_id)
            if state is None:
                return None
            if at_version is None or at_version == state.version:
                records = tx.live_records(session_id, payloads=True)
                row = VersionRow(state.leaf_id, state.metadata, state.updated_at)
                version = state.version
            else:
                _check_at_version(session_id, state, at_version)
                records = tx.records_at(session_id, at_version)
                found = tx.version_row(session_id, at_version)
                if found is None:
                    raise HistoryPurgedError(
                        "that version's history was purged",
                        session_id=session_id,
                        where="at_version",
                    )
                row = found
                version = at_version
        data = fold.fold_session(
            state,
            records,
            leaf_id=row.leaf_id,
            metadata=row.metadata,
            version=version,
            updated_at=row.created_at,
            raw=raw,
        )
        self._log_op("load", session_id, started, entries=len(records), version=version)
        return data

    def path(self, session_id: str, /, *, leaf_id: str | None = None) -> list[Entry]:
        session_id = check_session_id(session_id)
        if leaf_id is not None:
            check_entry_id(leaf_id, session_id=session_id, where="leaf_id")
        with self._read() as tx:
            state = _require(session_id, tx.state(session_id))
            records = tx.live_records(session_id, payloads=True)
        return fold.walk_path(session_id, records, state.leaf_id if leaf_id is None else leaf_id)

    def list_sessions(
        self,
        *,
        prefix: str | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        if prefix is not None and not isinstance(prefix, str):
            raise InvalidInputError("prefix must be a str", where="prefix")
        if updated_before is not None and (
            not isinstance(updated_before, datetime) or updated_before.tzinfo is None
        ):
            raise InvalidInputError(
                "updated_before must be a timezone-aware datetime", where="updated_before"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError("limit must be a positive int", where="limit")
        after = None if cursor is None else _decode_cursor(cursor)
        with self._read() as tx:
            states = tx.list_states(
                prefix=prefix, updated_before=updated_before, after=after, limit=limit + 1
            )
        items = [fold.session_info(state) for state in states[:limit]]
        next_cursor = _encode_cursor(items[-1].session_id) if len(states) > limit else None
        return Page(items=items, next_cursor=next_cursor)

    # -- whole-session operations -------------------------------------------

    def delete(self, session_id: str, /) -> bool:
        session_id = check_session_id(session_id)
        with self._write() as tx:
            deleted = tx.delete(session_id)
        logger.info("delete", session_id=session_id, deleted=deleted)
        return deleted

    def fork(
        self, source_id: str, new_id: str, /, *, at_entry_id: str | None = None
    ) -> SessionInfo:
        source_id = check_session_id(source_id, where="source_id")
        new_id = check_session_id(new_id, where="new_id")
        if at_entry_id is not None:
            check_entry_id(at_entry_id, session_id=source_id, where="at_entry_id")
        with self._write() as tx:
            source = _require(source_id, tx.state(source_id))
            if tx.state(new_id) is not None:
                raise SessionExistsError("the fork's session id is taken", session_id=new_id)
            live = tx.live_records(source_id, payloads=True)
            plan = fold.plan_fork(source, live, new_id, at_entry_id=at_entry_id, now=_now())
            tx.apply(plan)
        return fold.session_info(plan.state)

    def purge(self, session_id: str, /) -> int:
        session_id = check_session_id(session_id)
        with self._write() as tx:
            state = _require(session_id, tx.state(session_id))
            dropped = tx.purge(state)
        logger.info("purge", session_id=session_id, dropped=dropped)
        return dropped

    # -- lifecycle ----------------------------------------------------------

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


def _require(session_id: str, state: SessionState | None) -> SessionState:
    if state is None:
        raise SessionNotFoundError("no such session", session_id=session_id)
    return state


def _check_expected(session_id: str, expected_version: int | None) -> None:
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 0
    ):
        raise InvalidInputError(
            "expected_version must be None or an int >= 0",
            session_id=session_id,
            where="expected_version",
        )


def _check_at_version(session_id: str, state: SessionState, at_version: int) -> None:
    if (
        isinstance(at_version, bool)
        or not isinstance(at_version, int)
        or not (1 <= at_version <= state.version)
    ):
        raise InvalidInputError(
            f"at_version must be a version the session had (1..{state.version})",
            session_id=session_id,
            where="at_version",
        )
    if at_version < state.history_floor:
        raise HistoryPurgedError(
            "that version's history was purged", session_id=session_id, where="at_version"
        )


def iter_chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Split ids into chunks small enough for one `IN (...)` list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
