"""A watcher on a thread of its own, collecting what `Store.watch` yields: the watch tests' tool."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from eventlog import Change, Store

from .threads import NO_HANG_SECONDS

__all__ = ["ThreadedWatcher"]

_END = object()


class ThreadedWatcher:
    """Iterates `store.watch(...)` on a thread; the test takes the changes as they come.

    `take(n)` waits for the next `n` changes and `wait_ended()` for the iterator
    to end; both give up after a hang guard (never a speed check).
    """

    def __init__(self, store: Store, session_id: str, *, after_version: int = 0) -> None:
        self.iterator: Iterator[Change] = store.watch(session_id, after_version=after_version)
        self.seen: list[Change] = []
        self.error: BaseException | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._ended = False  # the end was taken from the queue
        self._thread = threading.Thread(target=self._run, name="test-watcher", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for change in self.iterator:
                self._queue.put(change)
        except BaseException as error:  # handed to the test
            self.error = error
        finally:
            self._queue.put(_END)

    def take(self, count: int, *, timeout: float = NO_HANG_SECONDS) -> list[Change]:
        """The next `count` changes the watcher yields."""
        taken: list[Change] = []
        while len(taken) < count:
            item = self._queue.get(timeout=timeout)
            if item is _END:
                self._ended = True
                raise AssertionError(
                    f"the watch ended after {len(self.seen)} changes (error: {self.error!r})"
                )
            taken.append(item)
            self.seen.append(item)
        return taken

    def wait_ended(self, *, timeout: float = NO_HANG_SECONDS) -> list[Change]:
        """Wait for the iterator to end; returns the changes it yielded meanwhile."""
        rest: list[Change] = []
        while not self._ended:
            item = self._queue.get(timeout=timeout)
            if item is _END:
                self._ended = True
            else:
                rest.append(item)
                self.seen.append(item)
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the watcher thread did not end"
        return rest

    @property
    def running(self) -> bool:
        return self._thread.is_alive()
