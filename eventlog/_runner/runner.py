"""The sync runner: runs the `operations` on a sync backend's transactions.

GENERATED from `_runner/runner_async.py` by `python -m eventlog._async_to_sync`:
do not edit by hand.

`StoreBase` holds the public methods once; a subclass says how an
operation runs. A backend subclasses `LogStore` and supplies
`_read()`/`_write()` context managers, each yielding one `Transaction`
(storage reads and writes, no decisions).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Self, TypeVar

from .._core import operations, watching
from .._core.codec import DEFAULT_MAX_ENTRY_BYTES
from .._core.operations import Operation
from .._core.options import check_max_entry_bytes, check_snapshot_memo_bytes
from .._core.sealing import Sealer
from .._core.snapshot_memo import DEFAULT_MEMO_BYTES, SnapshotMemo
from .._core.storage_requests import Steps, VersionRow
from .._core.transaction import Transaction
from ..errors import EventlogError, StoreUnavailableError
from ..keyring import KeyProvider, check_keyring
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
from .outcome import log_operation, settle_error
from .wakeups import Wakeups

__all__ = ["LogStore", "StoreBase", "Transaction", "VersionRow", "drive"]

T = TypeVar("T")


class StoreBase(ABC):
    """The public API of `Store`; subclasses say how an operation runs."""

    max_entry_bytes: int
    # The tenant whose sessions the store reads and writes ("": the default tenant).
    tenant: str = ""
    # The keyring (DESIGN.md section 8), and the sealing made from it with the tenant.
    _keyring: KeyProvider | None = None
    _sealing: Sealer | None = None
    # What the store remembers of its last `save` of each session (None: nothing).
    _snapshot_memo: SnapshotMemo | None = None

    @property
    def _sealer(self) -> Sealer | None:
        """Seals new sessions and opens sealed ones; None without a keyring."""
        if self._keyring is None:
            return None
        if self._sealing is None:
            self._sealing = Sealer(self._keyring, tenant=self.tenant)
        return self._sealing

    @abstractmethod
    def _run(self, operation: Operation[T]) -> T:
        """Run one operation in one transaction."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and threads; the store is unusable afterwards."""

    def save_delta(
        self, session_id: str, delta: SessionDelta, /, *, expected_version: int | None = None
    ) -> SaveResult:
        """See `Store.save_delta`."""
        return self._run(
            operations.save_delta(
                session_id,
                delta,
                expected_version=expected_version,
                max_entry_bytes=self.max_entry_bytes,
                sealer=self._sealer,
            )
        )

    def save(
        self, session_id: str, data: SessionData, /, *, expected_version: int | None = None
    ) -> SaveResult:
        """See `Store.save`."""
        return self._run(
            operations.save(
                session_id,
                data,
                expected_version=expected_version,
                max_entry_bytes=self.max_entry_bytes,
                sealer=self._sealer,
                memo=self._snapshot_memo,
            )
        )

    def load(
        self, session_id: str, /, *, at_version: int | None = None, raw: bool = False
    ) -> SessionData | None:
        """See `Store.load`."""
        return self._run(
            operations.load(session_id, at_version=at_version, raw=raw, sealer=self._sealer)
        )

    def path(
        self, session_id: str, /, *, leaf_id: str | None = None, limit: int | None = None
    ) -> list[Entry]:
        """See `Store.path`."""
        return self._run(
            operations.path(session_id, leaf_id=leaf_id, limit=limit, sealer=self._sealer)
        )

    def info(self, session_id: str, /) -> SessionInfo | None:
        """See `Store.info`."""
        return self._run(operations.info(session_id))

    def entry(self, session_id: str, entry_id: str, /, *, raw: bool = False) -> Entry | None:
        """See `Store.entry`."""
        return self._run(operations.entry(session_id, entry_id, raw=raw, sealer=self._sealer))

    def scan(
        self,
        session_id: str,
        /,
        *,
        id_prefix: str,
        after_id: str | None = None,
        limit: int | None = None,
        raw: bool = False,
    ) -> list[Entry]:
        """See `Store.scan`."""
        return self._run(
            operations.scan(
                session_id,
                id_prefix=id_prefix,
                after_id=after_id,
                limit=limit,
                raw=raw,
                sealer=self._sealer,
            )
        )

    def list_sessions(
        self,
        *,
        prefix: str | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """See `Store.list_sessions`."""
        return self._run(
            operations.list_sessions(
                prefix=prefix, updated_before=updated_before, limit=limit, cursor=cursor
            )
        )

    def delete(self, session_id: str, /, *, expected_version: int | None = None) -> bool:
        """See `Store.delete`."""
        deleted = self._run(operations.delete(session_id, expected_version=expected_version))
        if self._snapshot_memo is not None:
            # A hard delete leaves no copy of the session's payloads behind.
            self._snapshot_memo.forget(session_id)
        return deleted

    def fork(
        self, source_id: str, new_id: str, /, *, at_entry_id: str | None = None
    ) -> SessionInfo:
        """See `Store.fork`."""
        return self._run(
            operations.fork(source_id, new_id, at_entry_id=at_entry_id, sealer=self._sealer)
        )

    def purge(self, session_id: str, /) -> int:
        """See `Store.purge`."""
        return self._run(operations.purge(session_id))

    def rekey(self, session_id: str, /, *, seal: bool = False) -> RekeyOutcome:
        """Rewrap a sealed session's data key under the keyring's active key.

        Only the session's index row changes (its payloads stay sealed under the
        same data key), so an old key can leave the keyring once every session
        is rekeyed (`eventlog rekey`, `eventlog.rekeying.rekey_all`).

        Returns:
            ``"rewrapped"``, ``"current"`` (already under the active key),
            ``"plain"`` (not sealed), ``"sealed"`` (a plain session sealed, with
            `seal`: written again as its live entries, its history before dropped
            as by `purge`) or ``"missing"``.

        Raises:
            InvalidConfigError: the store has no keyring.
            DecryptionError: the keyring cannot unwrap the session's data key.
        """
        return self._run(operations.rekey(session_id, sealer=self._sealer, seal=seal))

    # -- the change feed --------------------------------------------------------

    def changes(
        self, session_id: str, /, *, after_version: int = 0, limit: int = 100, raw: bool = False
    ) -> ChangePage:
        """See `Store.changes`."""
        return self._run(
            operations.changes(
                session_id,
                after_version=after_version,
                limit=limit,
                raw=raw,
                sealer=self._sealer,
            )
        )

    # -- watch ------------------------------------------------------------------

    def watch(self, session_id: str, /, *, after_version: int = 0) -> Iterator[Change]:
        """See `Store.watch`."""
        sid, after = watching.check_watch(session_id, after_version)
        return self._watching(sid, after)

    @abstractmethod
    def _watch_hub(self) -> Wakeups:
        """The wake-ups of this store's watchers (closed with the store)."""

    def _watch_key(self, session_id: str) -> str:
        """The key a write of `session_id` wakes in `_watch_hub`."""
        return session_id

    def _watching(self, session_id: str, after_version: int) -> Iterator[Change]:
        cursor = watching.WatchCursor(after_version)
        failing_since: float | None = None
        with self._watch_hub().subscribe(self._watch_key(session_id)) as wakeup:
            while not wakeup.closed:
                try:
                    page, more = self._watch_page(session_id, cursor)
                    failing_since = None
                except StoreUnavailableError:
                    # A server restart: read again (resuming at `cursor`) until
                    # it is back, unless the store closed meanwhile.
                    if wakeup.closed:
                        return
                    now = time.monotonic()
                    failing_since = now if failing_since is None else failing_since
                    if now - failing_since > watching.RETRY_FOR_S:
                        raise
                    page, more = [], False
                if page is None:
                    return
                for change in page:
                    cursor.last = change.version
                    yield change
                if not more:
                    wakeup.wait(watching.SAFETY_READ_S)

    def _watch_page(
        self, session_id: str, cursor: watching.WatchCursor
    ) -> tuple[list[Change] | None, bool]:
        """The next changes after `cursor` (None: the session is gone), and whether more wait."""
        where = self._run(watching.position(session_id))
        if where is None or cursor.ended(where):
            return None, False
        if not cursor.behind(where):
            return [], False
        page = self.changes(session_id, after_version=cursor.last, limit=watching.PAGE_SIZE)
        return page.items, page.next_version is not None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class LogStore(StoreBase):
    """An `Store` built on a backend's transactions."""

    def __init__(
        self,
        *,
        max_entry_bytes: int | None = None,
        keyring: KeyProvider | None = None,
        snapshot_memo_bytes: int | None = None,
    ) -> None:
        self.max_entry_bytes = check_max_entry_bytes(
            DEFAULT_MAX_ENTRY_BYTES if max_entry_bytes is None else max_entry_bytes
        )
        self._keyring = check_keyring(keyring)
        memo_bytes = check_snapshot_memo_bytes(
            DEFAULT_MEMO_BYTES if snapshot_memo_bytes is None else snapshot_memo_bytes
        )
        self.snapshot_memo_bytes = memo_bytes
        self._snapshot_memo = SnapshotMemo(memo_bytes) if memo_bytes else None
        self._closed = False
        self._wakeups = Wakeups()

    def _watch_hub(self) -> Wakeups:
        return self._wakeups

    @abstractmethod
    def _write(self) -> AbstractContextManager[Transaction]:
        """A write transaction: committed on a clean exit, rolled back on an error."""

    @abstractmethod
    def _read(self) -> AbstractContextManager[Transaction]:
        """A read transaction seeing one consistent snapshot."""

    @abstractmethod
    def _close(self) -> None:
        """Release the backend's resources."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._wakeups.close()  # watchers end before the connections go
            self._close()

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


def drive(steps: Steps[T], tx: Transaction) -> T:
    """Run an operation's steps on a transaction; returns what the steps return.

    Each request is answered by its own method for the transaction, which
    mypy checks against `Transaction`; nothing is looked up by name.
    """
    try:
        request = next(steps)
        while True:
            request = steps.send(request.answer(tx))
    except StopIteration as done:
        result: T = done.value
        return result
