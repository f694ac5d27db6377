"""`HomeLoop`: an event loop on a thread of its own, that coroutines from any loop run on.

Why: an asyncio connection pool (psycopg's) belongs to the loop that opened it, but
callers use a store from many loops: ``asyncio.run`` per call, one loop per thread.
A store that keeps its pool on a home loop is usable from any of them, and closable
from any of them, at the price of one thread hop per call (README, "Choices").
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from contextlib import suppress
from typing import Any, Generic, TypeVar

from ..errors import StoreUnavailableError

__all__ = ["HomeLoop"]

T = TypeVar("T")


class HomeLoop:
    """A private event loop running on a daemon thread until `stop`.

    A caller cancelled while its coroutine runs here cancels that coroutine too (the
    cancellation crosses the thread) and, like a cancelled task, stops waiting only
    when the coroutine has ended: its clean-up (a rollback, a connection closed) is
    done before the caller moves on.
    """

    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            # Calls that raced `stop` end, cancelled, instead of waiting forever.
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            if pending:
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def owns_running_loop(self) -> bool:
        """Whether the caller is already on the home loop."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _submit(self, coro: Coroutine[Any, Any, T]) -> _Call[T]:
        call = _Call(self._loop, coro)
        with self._lock:
            if self._stopped:
                coro.close()
                raise StoreUnavailableError("the store is closed")
            self._loop.call_soon_threadsafe(call.start)
        return call

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on the home loop, from whatever loop the caller is on."""
        if self.owns_running_loop():
            return await coro
        call = self._submit(coro)
        waiter = asyncio.wrap_future(call.done)
        try:
            return await asyncio.shield(waiter)
        except asyncio.CancelledError:
            if not waiter.done():  # the caller was cancelled: so is the call, then wait for it
                call.cancel()
                with suppress(BaseException):
                    await waiter
                raise
            task = asyncio.current_task()
            if self._stopped and task is not None and not task.cancelling():
                # Cancelled by `stop`, not by the caller.
                raise StoreUnavailableError("the store was closed during the call") from None
            raise

    def stop(self) -> None:
        """End the loop and its thread (waits for it); calls after this are refused."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            # After every call already submitted: each starts, and `_serve` ends it.
            self._loop.call_soon_threadsafe(self._loop.stop)
        if threading.current_thread() is not self._thread:
            self._thread.join()


class _Call(Generic[T]):
    """One coroutine run on the home loop; `done` completes when it has ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> None:
        self.loop = loop
        self.coro = coro
        self.done: Future[T] = Future()
        self.task: asyncio.Task[T] | None = None
        self.cancelled = False

    def start(self) -> None:
        if self.cancelled:
            self.coro.close()
            self.done.cancel()
            return
        self.task = self.loop.create_task(self.coro)
        self.task.add_done_callback(self._finish)

    def _finish(self, task: asyncio.Task[T]) -> None:
        if self.done.done():  # its waiter was cancelled twice and left
            return
        if task.cancelled():
            self.done.cancel()
        elif (error := task.exception()) is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(task.result())

    def cancel(self) -> None:
        """Cancel from any thread: before it starts, it never starts."""
        self.loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()
