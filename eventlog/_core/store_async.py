"""The `AsyncStore` protocol: the operations every backend offers (DESIGN.md section 2).

This file is the source of `store_sync.py`, which is generated from it
(`python -m eventlog._async_to_sync`); a test fails if the two drift.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from ..model import (
    Change,
    ChangePage,
    Entry,
    Page,
    RekeyOutcome,
    SaveResult,
    SessionData,
    SessionDelta,
    SessionInfo,
)

__all__ = ["AsyncStore"]


@runtime_checkable
class AsyncStore(Protocol):
    """A session store, safe to share between the threads and tasks that use it."""

    async def save_delta(
        self, session_id: str, delta: SessionDelta, /, *, expected_version: int | None = None
    ) -> SaveResult:
        """Append `delta.new_entries` and tombstone `delta.removed_entry_ids` in one transaction.

        Args:
            session_id: the session; created if absent.
            delta: what changed since the last save.
            expected_version: fail unless the stored version is this (0: must not exist).

        Returns:
            What was appended, skipped and tombstoned, and the version after the call.

        Raises:
            InvalidInputError: bad ids, payloads or leaf; nothing written.
            IdConflictError: an id is stored with other content; nothing written.
            ConcurrencyError: `expected_version` did not match; nothing written.
        """
        ...

    async def save(
        self, session_id: str, data: SessionData, /, *, expected_version: int | None = None
    ) -> SaveResult:
        """Reconcile the stored session with an authoritative snapshot.

        New ids are appended, stored ids missing from `data` are tombstoned,
        changed entries are superseded and the order of `data.entries` is restored;
        only the difference is written.

        Raises:
            InvalidInputError: bad ids, payloads or leaf; nothing written.
            IdConflictError: one id twice in `data` with different content.
            ConcurrencyError: `expected_version` did not match; nothing written.
        """
        ...

    async def load(
        self, session_id: str, /, *, at_version: int | None = None, raw: bool = False
    ) -> SessionData | None:
        """Fold the log back into the session, or `None` if it does not exist.

        Args:
            at_version: the session as it was right after that version.
            raw: return payloads and metadata as the exact `RawJSON` bytes stored.

        Raises:
            HistoryPurgedError: `at_version` is older than the last purge.
            InvalidInputError: `at_version` is not a version the session had.
        """
        ...

    async def path(
        self, session_id: str, /, *, leaf_id: str | None = None, limit: int | None = None
    ) -> list[Entry]:
        """The branch from its root to `leaf_id` (default: the session's leaf).

        The walk stops at an entry whose parent is not live.

        Args:
            limit: only the last `limit` entries of the branch (still root first),
                read by walking up from the leaf: cost O(limit), not O(branch).

        Raises:
            SessionNotFoundError: no such session.
            InvalidLeafError: `leaf_id` is not a live entry.
            CorruptionError: the parent links form a cycle (with `limit`: one met
                within the entries walked).
        """
        ...

    async def info(self, session_id: str, /) -> SessionInfo | None:
        """The session's index row (leaf, version, counts), or None; reads no entries."""
        ...

    async def entry(self, session_id: str, entry_id: str, /, *, raw: bool = False) -> Entry | None:
        """The live entry with that id, or None (also for a missing session).

        Args:
            raw: return the payload as the exact `RawJSON` bytes stored.
        """
        ...

    async def scan(
        self,
        session_id: str,
        /,
        *,
        id_prefix: str,
        after_id: str | None = None,
        limit: int | None = None,
        raw: bool = False,
    ) -> list[Entry]:
        """Live entries whose id starts with `id_prefix`, in id (code point) order.

        Answered from the index of live ids, so an adapter can group entries by
        an id convention (``write:<checkpoint>:...``). A missing session gives [].

        Args:
            id_prefix: "" for every live entry.
            after_id: only ids above this one (the last id of the previous page).
            limit: at most this many.

        Raises:
            InvalidIdError: `id_prefix` is not the start of any valid entry id.
        """
        ...

    async def delete(self, session_id: str, /, *, expected_version: int | None = None) -> bool:
        """Remove the session and every record of it. True if it existed.

        With `expected_version`, only if the session is at that version (0: it
        does not exist), checked in the delete's own transaction.

        Raises:
            ConcurrencyError: `expected_version` does not match; nothing is deleted.
        """
        ...

    async def list_sessions(
        self,
        *,
        prefix: str | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """One page of sessions in session-id order."""
        ...

    async def fork(
        self, source_id: str, new_id: str, /, *, at_entry_id: str | None = None
    ) -> SessionInfo:
        """Copy a session's live entries, leaf and metadata into a new session.

        With `at_entry_id`, only the path from the root to that entry is copied
        and it becomes the leaf.

        Raises:
            SessionNotFoundError: no source session.
            SessionExistsError: `new_id` already exists.
            InvalidLeafError: `at_entry_id` is not a live entry of the source.
        """
        ...

    async def purge(self, session_id: str, /) -> int:
        """Drop tombstoned and superseded records; returns how many were dropped.

        Raises:
            SessionNotFoundError: no such session.
        """
        ...

    async def rekey(self, session_id: str, /, *, seal: bool = False) -> RekeyOutcome:
        """Rewrap a sealed session's data key under the keyring's active key.

        Returns:
            ``"rewrapped"``, ``"current"`` (already under the active key),
            ``"plain"`` (not sealed), ``"sealed"`` (with `seal`: a plain session
            written again sealed, its history dropped as by `purge`) or ``"missing"``.

        Raises:
            InvalidConfigError: the store has no keyring.
            DecryptionError: the keyring cannot unwrap the session's data key.
        """
        ...

    # -- the change feed --------------------------------------------------------

    async def changes(
        self, session_id: str, /, *, after_version: int = 0, limit: int = 100, raw: bool = False
    ) -> ChangePage:
        """The session's log version by version, oldest first (see `Change`).

        Folding the changes of versions 1..v from nothing (`fold_changes`) gives
        `load(at_version=v)`. A missing session, or one not past
        `after_version`, gives an empty page.

        Args:
            after_version: the versions after this one (0: from the first).
            limit: at most this many versions; `next_version` continues.
            raw: payloads and metadata as the exact `RawJSON` bytes stored.

        Raises:
            HistoryPurgedError: `after_version` is below the session's last purge.
            InvalidInputError: `after_version` or `limit` is not an int in range.
        """
        ...

    def watch(self, session_id: str, /, *, after_version: int = 0) -> AsyncIterator[Change]:
        """The session's changes after `after_version`, then each new version as it commits.

        Iterate it (``async for`` on an `AsyncStore`): first the stored versions,
        then each version written by any process, seen within about 100 ms. It
        ends when the session is deleted (or deleted and created again), when the
        session does not exist at the first read, or when the store closes.
        Closing or dropping the iterator releases what it holds.

        Raises:
            InvalidInputError: `after_version` is not an int >= 0; raised at the call.
            HistoryPurgedError: from the iterator, if `after_version` is below
                the session's last purge.
        """
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
