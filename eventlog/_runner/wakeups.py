"""Wake-up calls for watchers: a write (or a backend's change feed) wakes the watchers of a key.

Thread-safe, and usable from any thread and any event loop: a sync watcher
waits on a `threading.Event`, an async one on an `asyncio.Event` of its own
loop, set through `call_soon_threadsafe`. A wake-up is a hint to read again,
never data: a missed one costs only the delay until the watcher's next
safety re-read, a spurious one costs a read.

A backend with a feed of its own (SQLite's change counter, PostgreSQL's
notifications) starts it when the first watcher subscribes and stops it when
the last one leaves (`Feed`).
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import suppress
from types import TracebackType
from typing import Protocol, Self, TypeVar

__all__ = ["AsyncSubscription", "Feed", "Subscription", "Wakeups"]

_S = TypeVar("_S", bound="_Subscriber")


class Feed(Protocol):
    """A backend's source of wake-ups, running while anyone watches."""

    def start(self) -> None:
        """Begin waking the hub's watchers (called with the first subscriber)."""

    def stop(self, *, wait: bool) -> None:
        """Stop and release what the feed holds: when the last watcher leaves (without
        waiting: that may be on an event loop) or when the store closes (waiting)."""


class _Subscriber:
    """One watcher's registration: woken by key, or by `wake_all`, or by close."""

    def __init__(self, hub: Wakeups, key: str) -> None:
        self._hub = hub
        self.key = key
        self.closed = False

    def wake(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._hub._leave(self)


class Subscription(_Subscriber):
    """A sync watcher's wake-ups."""

    def __init__(self, hub: Wakeups, key: str) -> None:
        super().__init__(hub, key)
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float) -> None:
        """Return when woken (at once if woken since the last wait) or after `timeout`."""
        self._event.wait(timeout)
        # Cleared before the caller reads again: a write that commits after the
        # clear wakes the next wait, one before it is seen by that read.
        self._event.clear()


class AsyncSubscription(_Subscriber):
    """An async watcher's wake-ups, on the event loop it subscribed from."""

    def __init__(self, hub: Wakeups, key: str) -> None:
        super().__init__(hub, key)
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def wake(self) -> None:
        with suppress(RuntimeError):  # the watcher's loop is closed: nobody waits
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> None:
        """Return when woken (at once if woken since the last wait) or after `timeout`."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        self._event.clear()


class Wakeups:
    """The watchers of one store, by key (a session id, or a digest of one).

    `feed`, when a backend sets one, runs while anyone watches.
    """

    def __init__(self, feed: Feed | None = None) -> None:
        self.feed = feed
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[_Subscriber]] = {}
        self._count = 0
        self.closed = False

    def subscribe(self, key: str) -> Subscription:
        """Register a sync watcher of `key`; leave with `with` (or the store's close)."""
        return self._join(Subscription(self, key))

    def subscribe_async(self, key: str) -> AsyncSubscription:
        """Register an async watcher of `key`, on the running event loop."""
        return self._join(AsyncSubscription(self, key))

    def _join(self, subscriber: _S) -> _S:
        with self._lock:
            if self.closed:
                subscriber.closed = True
                return subscriber
            self._subscribers.setdefault(subscriber.key, set()).add(subscriber)
            self._count += 1
            first = self._count == 1
        if first and self.feed is not None:
            self.feed.start()
        return subscriber

    def _leave(self, subscriber: _Subscriber) -> None:
        with self._lock:
            group = self._subscribers.get(subscriber.key)
            if group is None or subscriber not in group:
                return
            group.discard(subscriber)
            if not group:
                del self._subscribers[subscriber.key]
            self._count -= 1
            last = self._count == 0
        if last and self.feed is not None:
            self.feed.stop(wait=False)

    @property
    def watchers(self) -> int:
        """How many watchers are subscribed."""
        return self._count

    def notify(self, key: str) -> None:
        """Wake the watchers of `key`."""
        with self._lock:
            group = list(self._subscribers.get(key, ()))
        for subscriber in group:
            subscriber.wake()

    def notify_all(self) -> None:
        """Wake every watcher (a feed that cannot tell which session changed, or lost track)."""
        with self._lock:
            everyone = [s for group in self._subscribers.values() for s in group]
        for subscriber in everyone:
            subscriber.wake()

    def close(self) -> None:
        """End every watch: each wakes, sees `closed` and ends; the feed stops."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            everyone = [s for group in self._subscribers.values() for s in group]
            self._subscribers.clear()
            had_watchers = self._count > 0
            self._count = 0
        for subscriber in everyone:
            subscriber.closed = True
            subscriber.wake()
        if had_watchers and self.feed is not None:
            self.feed.stop(wait=True)
