"""`AsyncPostgresStore`: the async PostgreSQL store, run on the sync store's connections in threads.

Why (issue #21): the loop-bound driver on a home loop (`any_loop.py`) runs every
call of every task on one thread, and psycopg's async pipeline machinery made
that thread CPU bound long before the pool was busy. Here each call runs the sync
driver (`driver.py`, generated from the same source) on a worker thread, one
worker per pooled connection: libpq waits without the GIL, so the calls of many
tasks overlap as those of the sync store's threads do. The threads belong to no
event loop, so the store works from any loop and thread, and closes from any.

Cancellation, as for a task: a call cancelled before a worker took it never
starts; one waiting for a pooled connection gives it back unused; one running a
statement has that statement cancelled on the server (as psycopg's async
connection does) and its caller waits until the worker has rolled back and
returned the connection. A write lands whole or not at all, and abandoned calls
hold no connection or lock for longer than their clean-up.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from typing import Any, Final, TypeVar

import psycopg
from psycopg import Connection
from psycopg_pool import ConnectionPool

from .._core.operations import Operation
from .._runner.threaded import SyncBackedAsyncStore
from ..errors import StoreUnavailableError
from .driver import PostgresStore

__all__ = ["AsyncPostgresStore"]

T = TypeVar("T")

# How long a cancel request may take before the worker is left to end by itself.
_CANCEL_TIMEOUT_S: Final = 5.0
# A cancel request that reaches the server before the statement does is lost (the
# backend is idle then): while the call keeps its connection, cancel again this often.
_CANCEL_AGAIN_S: Final = 0.1


class _Abandoned(Exception):
    """The call's caller was cancelled before it took a connection; nothing was sent.

    Raised in the worker only, whose result nobody awaits.
    """


class _Call:
    """One operation on a worker thread: the pooled connection it holds, cancellable."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._given_back = threading.Condition(self._lock)
        self._conn: Connection[Any] | None = None
        self._abandoned = False

    def took(self, conn: Connection[Any]) -> bool:
        """Record `conn` as the call's; False if the caller has left (give it back)."""
        with self._lock:
            if self._abandoned:
                return False
            self._conn = conn
            return True

    def gave_back(self, conn: Connection[Any]) -> None:
        """The call returns `conn` to the pool (waits for a cancel being sent on it)."""
        with self._lock:
            if self._conn is conn:
                self._conn = None
                self._given_back.notify_all()

    def abandon(self) -> bool:
        """The caller leaves: no more connections for the call; whether it holds one now."""
        with self._lock:
            self._abandoned = True
            return self._conn is not None

    def cancel_statement(self) -> None:
        """Cancel on the server what the call's connection runs, until the call gives it back.

        Each request is sent under the lock, so the connection cannot go back to the
        pool, and to another call, before the request has reached the server. A
        request finding the backend between statements does nothing, hence the repeats.
        """
        with self._given_back:
            conn = self._conn
            while conn is not None and self._conn is conn:
                with suppress(psycopg.Error):
                    conn.cancel_safe(timeout=_CANCEL_TIMEOUT_S)
                self._given_back.wait(_CANCEL_AGAIN_S)


_worker = threading.local()


def _current_call() -> _Call | None:
    call: _Call | None = getattr(_worker, "call", None)
    return call


class _CallPool(ConnectionPool[Connection[Any]]):
    """A pool that tells the worker's call which connection it holds, and refuses a left one."""

    def getconn(self, timeout: float | None = None) -> Connection[Any]:
        conn = super().getconn(timeout)
        call = _current_call()
        if call is not None and not call.took(conn):
            super().putconn(conn)
            raise _Abandoned
        return conn

    def putconn(self, conn: Connection[Any]) -> None:
        call = _current_call()
        if call is not None:
            call.gave_back(conn)
        super().putconn(conn)


class _SyncStore(PostgresStore):
    """The sync store whose pool tracks the worker calls' connections."""

    _pool_class = _CallPool


class AsyncPostgresStore(SyncBackedAsyncStore):
    """A store in PostgreSQL, for asyncio, from any event loop and any thread.

    Open it with ``await AsyncPostgresStore.open(url)`` (or
    `eventlog.connect_async`); it takes `PostgresStore`'s options. Each call runs
    on one of ``max_size`` worker threads, on the sync store's pool.
    """

    def __init__(self, url: str, **options: Any) -> None:
        self.sync: _SyncStore = _SyncStore(url, **options)  # checks everything, opens nothing
        super().__init__(self.sync)
        # One worker per pooled connection: more would only wait for one.
        self._workers = ThreadPoolExecutor(self.sync._max_size, thread_name_prefix="eventlog-pg")
        self._cancels = ThreadPoolExecutor(
            self.sync._max_size, thread_name_prefix="eventlog-pg-cancel"
        )
        self._closed = False

    def __repr__(self) -> str:
        # Never the URL: it may hold a password.
        return f"<{type(self).__name__} tenant={self.tenant!r}>"

    @property
    def snapshot_memo_bytes(self) -> int:
        """Payload bytes the snapshot memo keeps at most (0: none)."""
        return self.sync.snapshot_memo_bytes

    @classmethod
    async def open(cls, url: str, **options: Any) -> AsyncPostgresStore:
        """Connect, migrate (unless ``migrate=False``) and open the pool, off the event loop.

        Raises:
            InvalidConfigError: the URL or an option is not usable.
            StoreUnavailableError: the server cannot be reached, or refuses us.
            SchemaVersionError: the schema is newer than this eventlog, or not ours.
        """
        store = cls(url, **options)
        opening = asyncio.get_running_loop().run_in_executor(None, store._open)
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            # The opening thread cannot stop half way: let it end, then close.
            with suppress(BaseException):
                await opening
            await store.close()
            raise
        except BaseException:
            await store.close()
            raise
        return store

    def _open(self) -> None:
        self.sync._start()

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations; returns the versions applied."""
        return await asyncio.get_running_loop().run_in_executor(None, self.sync.migrate)

    def _serve(self, call: _Call, operation: Operation[T]) -> T:
        _worker.call = call
        try:
            return self.sync._run(operation)
        finally:
            _worker.call = None

    async def _run(self, operation: Operation[T]) -> T:
        if self._closed:
            raise StoreUnavailableError("the store is closed")
        call = _Call()
        try:
            future: Future[T] = self._workers.submit(self._serve, call, operation)
        except RuntimeError:  # shut down by a `close` in another thread
            raise StoreUnavailableError("the store is closed") from None
        waiter = asyncio.wrap_future(future)
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not waiter.done():  # the caller was cancelled
                waiter.add_done_callback(_retrieved)
                if not future.cancel() and call.abandon():
                    # Running a statement: cancel it and wait for the clean-up.
                    with suppress(RuntimeError):  # a `close` ended the cancelling thread
                        self._cancels.submit(call.cancel_statement)
                    with suppress(BaseException):
                        await waiter
                raise
            task = asyncio.current_task()
            if self._closed and task is not None and not task.cancelling():
                # Cancelled by `close` before a worker took it, not by the caller.
                raise StoreUnavailableError("the store was closed during the call") from None
            raise

    async def close(self) -> None:
        """End every watch, let running calls end (queued ones are refused), release all."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self.sync._watch_hub().close()  # watchers end before the connections go
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._cancels.shutdown(wait=True)
        self.sync.close()


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Take an abandoned call's outcome, so that asyncio does not report it as unseen."""
    if not future.cancelled():
        future.exception()
