"""The async stores: the same operations as `engine`, driven from asyncio.

`AsyncStoreBase` holds the public methods once. `AsyncLogStore` runs
operations on a backend's async transactions (Postgres); `ThreadedAsyncStore`
runs them on a sync store in worker threads, writes on a single writer thread
so the event loop never blocks on the embedded database.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar

from . import operations
from .codec import DEFAULT_MAX_ENTRY_BYTES
from .engine import LogStore, check_max_entry_bytes, log_operation, settle_error
from .errors import EventlogError, StoreUnavailableError
from .fold import PurgePlan, Record, SessionState, WritePlan
from .model import Entry, Page, SaveResult, SessionData, SessionDelta, SessionInfo
from .operations import Operation, Steps, VersionRow

__all__ = ["AsyncLogStore", "AsyncStoreBase", "AsyncTransaction", "ThreadedAsyncStore", "drive"]

T = TypeVar("T")


class AsyncTransaction(Protocol):
    """`operations.Transaction` with coroutine methods."""

    async def state(self, session_id: str) -> SessionState | None: ...

    async def latest_records(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> dict[str, Record]: ...

    async def state_and_latest(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> tuple[SessionState | None, dict[str, Record]]: ...

    async def live_records(self, session_id: str, *, payloads: bool) -> list[Record]: ...

    async def live_entries(self, session_id: str, *, raw: bool) -> list[Entry]: ...

    async def records_at(self, session_id: str, version: int) -> list[Record]: ...

    async def version_row(self, session_id: str, version: int) -> VersionRow | None: ...

    async def apply(self, plan: WritePlan) -> None: ...

    async def delete(self, session_id: str) -> bool: ...

    async def purge(self, plan: PurgePlan) -> int: ...

    async def list_states(
        self,
        *,
        prefix: str | None,
        updated_before: datetime | None,
        after: str | None,
        limit: int,
    ) -> list[SessionState]: ...


class AsyncStoreBase(ABC):
    """The public async API; subclasses say how an operation runs."""

    max_entry_bytes: int

    @abstractmethod
    async def _run(self, operation: Operation[T]) -> T:
        """Run one operation in one transaction."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads; the store is unusable afterwards."""

    async def save_delta(
        self, session_id: str, delta: SessionDelta, /, *, expected_version: int | None = None
    ) -> SaveResult:
        """See `Store.save_delta`."""
        return await self._run(
            operations.save_delta(
                session_id,
                delta,
                expected_version=expected_version,
                max_entry_bytes=self.max_entry_bytes,
            )
        )

    async def save(
        self, session_id: str, data: SessionData, /, *, expected_version: int | None = None
    ) -> SaveResult:
        """See `Store.save`."""
        return await self._run(
            operations.save(
                session_id,
                data,
                expected_version=expected_version,
                max_entry_bytes=self.max_entry_bytes,
            )
        )

    async def load(
        self, session_id: str, /, *, at_version: int | None = None, raw: bool = False
    ) -> SessionData | None:
        """See `Store.load`."""
        return await self._run(operations.load(session_id, at_version=at_version, raw=raw))

    async def path(self, session_id: str, /, *, leaf_id: str | None = None) -> list[Entry]:
        """See `Store.path`."""
        return await self._run(operations.path(session_id, leaf_id=leaf_id))

    async def list_sessions(
        self,
        *,
        prefix: str | None = None,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> Page:
        """See `Store.list_sessions`."""
        return await self._run(
            operations.list_sessions(
                prefix=prefix, updated_before=updated_before, limit=limit, cursor=cursor
            )
        )

    async def delete(self, session_id: str, /, *, expected_version: int | None = None) -> bool:
        """See `Store.delete`."""
        return await self._run(operations.delete(session_id, expected_version=expected_version))

    async def fork(
        self, source_id: str, new_id: str, /, *, at_entry_id: str | None = None
    ) -> SessionInfo:
        """See `Store.fork`."""
        return await self._run(operations.fork(source_id, new_id, at_entry_id=at_entry_id))

    async def purge(self, session_id: str, /) -> int:
        """See `Store.purge`."""
        return await self._run(operations.purge(session_id))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class AsyncLogStore(AsyncStoreBase):
    """An async store over a backend's async transactions (the twin of `LogStore`)."""

    def __init__(self, *, max_entry_bytes: int | None = None) -> None:
        self.max_entry_bytes = check_max_entry_bytes(
            DEFAULT_MAX_ENTRY_BYTES if max_entry_bytes is None else max_entry_bytes
        )
        self._closed = False

    @abstractmethod
    async def _close(self) -> None:
        """Release the backend's resources."""

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._close()

    @abstractmethod
    def _write(self) -> AbstractAsyncContextManager[AsyncTransaction]:
        """A write transaction: committed on a clean exit, rolled back on an error."""

    @abstractmethod
    def _read(self) -> AbstractAsyncContextManager[AsyncTransaction]:
        """A read transaction seeing one consistent snapshot."""

    async def _run(self, operation: Operation[T]) -> T:
        started = time.perf_counter()
        try:
            result = await self._execute(operation)
        except EventlogError as error:
            settle_error(error, operation)
            raise
        log_operation(operation, result, started)
        return result

    async def _execute(self, operation: Operation[T]) -> T:
        """Run the operation's steps in one transaction of its mode."""
        async with self._write() if operation.mode == "write" else self._read() as tx:
            return await drive(operation.steps(), tx)


async def drive(steps: Steps[T], tx: AsyncTransaction) -> T:
    """Run an operation's steps on an async transaction; returns what the steps return."""
    try:
        call = next(steps)
        while True:
            method = getattr(tx, call.method)
            call = steps.send(await method(*call.args, **call.kwargs))
    except StopIteration as done:
        result: T = done.value
        return result


class ThreadedAsyncStore(AsyncStoreBase):
    """An async store over a sync one: writes on one writer thread, reads on a few others.

    A cancelled caller stops waiting, but the operation it started runs to its
    end in the worker thread: a write lands whole or not at all.
    """

    def __init__(self, sync: LogStore, *, readers: int = 4) -> None:
        self.sync = sync
        self.max_entry_bytes = sync.max_entry_bytes
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="eventlog-writer")
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="eventlog-reader")
        self._closed = False

    async def _run(self, operation: Operation[T]) -> T:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        pool = self._writer if operation.mode == "write" else self._readers
        loop = asyncio.get_running_loop()
        result: T = await loop.run_in_executor(pool, self.sync._run, operation)
        return result

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.sync.close()
