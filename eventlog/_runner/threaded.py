"""`ThreadedAsyncStore`: an async store over a sync one, for the embedded database."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .._core.operations import Operation
from ..errors import StoreUnavailableError
from .runner import LogStore
from .runner_async import AsyncStoreBase
from .wakeups import Wakeups

__all__ = ["SyncBackedAsyncStore", "ThreadedAsyncStore"]

T = TypeVar("T")


class SyncBackedAsyncStore(AsyncStoreBase):
    """An async store whose calls run on a sync store in worker threads (its subclass's).

    It shares the sync store's settings, keys, snapshot memo (thread safe: the
    workers run `save`) and watch hub, so both see the same state.
    """

    def __init__(self, sync: LogStore) -> None:
        self.sync = sync
        self.max_entry_bytes = sync.max_entry_bytes
        self.tenant = sync.tenant
        self._keyring = sync._keyring
        self._sealing = sync._sealer
        self._snapshot_memo = sync._snapshot_memo

    def _watch_hub(self) -> Wakeups:
        return self.sync._watch_hub()

    def _watch_key(self, session_id: str) -> str:
        return self.sync._watch_key(session_id)


class ThreadedAsyncStore(SyncBackedAsyncStore):
    """An async store over a sync one: writes on one writer thread, reads on a few others.

    So the event loop never blocks on the embedded database. A cancelled
    caller stops waiting, but the operation it started runs to its end in the
    worker thread: a write lands whole or not at all.
    """

    def __init__(self, sync: LogStore, *, readers: int = 4) -> None:
        super().__init__(sync)
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
        self.sync._watch_hub().close()  # watchers end before the threads go
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        self.sync.close()
