"""What a watcher holds, and that it lets go: pooled connections, the listening connection, threads.

Closed, dropped and ended watchers; the last one leaving stops the backend's
feed (SQLite's poller, PostgreSQL's listener); closing the store ends watchers
blocked in other threads and leaves no thread behind.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import eventlog
from eventlog import Entry, SessionDelta, Store
from eventlog._core import watching
from eventlog._core.watching import watch_key
from eventlog._postgres import notifier
from eventlog._runner.wakeups import Wakeups
from eventlog.testing.threads import NO_HANG_SECONDS
from eventlog.testing.watcher import ThreadedWatcher

SID = "watched"


def _append(store: Store, entry_id: str) -> None:
    store.save_delta(SID, SessionDelta(new_entries=[Entry(id=entry_id, payload={})]))


def _hub(store: Any) -> Wakeups:
    hub: Wakeups = store._watch_hub()
    return hub


def _threads() -> set[str]:
    return {thread.name for thread in threading.enumerate()}


def _feed_threads() -> list[str]:
    """The watch feeds' threads (SQLite's poller, PostgreSQL's listener).

    Not the PostgreSQL store's notification sender, which writes start and the
    store's close ends (`_threads() - before` checks that it ends).
    """
    return [
        t.name
        for t in threading.enumerate()
        if t.name.startswith("eventlog-") and t.name != notifier.THREAD_NAME
    ]


def _feeds_end() -> bool:
    """Whether the feed threads end (told to stop, they finish their last poll first)."""
    deadline = time.monotonic() + NO_HANG_SECONDS
    while _feed_threads():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'watch.db'}"
    url: str = request.getfixturevalue("url")
    return url


def _pool_in_use(store: Any) -> int:
    stats = store._pool.get_stats()
    return int(stats["pool_size"] - stats["pool_available"])


def _listening(admin: psycopg.Connection[Any], pid: int | None) -> bool:
    row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == 1


def _gone(admin: psycopg.Connection[Any], pid: int | None) -> bool:
    """Whether the server process of a closed connection ends (it exits just after the close)."""
    deadline = time.monotonic() + NO_HANG_SECONDS
    while _listening(admin, pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_watchers_share_one_feed_that_stops_when_the_last_one_leaves(store_url: str) -> None:
    before = _threads()
    with eventlog.connect(store_url) as store:
        _append(store, "a")
        assert _feed_threads() == []
        first, second = store.watch(SID), store.watch(SID)
        assert next(first).version == next(second).version == 1
        hub = _hub(store)
        assert hub.watchers == 2
        assert len(_feed_threads()) == 1  # one poller or listener thread for both
        first.close()  # type: ignore[attr-defined]
        assert hub.watchers == 1 and len(_feed_threads()) == 1
        del second  # dropped without close: the generator's finalizer leaves
        gc.collect()
        assert hub.watchers == 0
        assert _feeds_end()
    assert _threads() - before == set()


def test_postgres_watchers_return_pooled_connections_and_the_listener_closes(
    url: str, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only notifications wake the watchers, so none is reading when the pool is looked at.
    monkeypatch.setattr(watching, "SAFETY_READ_S", 3600.0)
    with eventlog.connect(url, min_size=1, max_size=4) as store:
        _append(store, "a")
        watchers = [ThreadedWatcher(store, SID) for _ in range(6)]  # more than the pool holds
        for watcher in watchers:
            watcher.take(1)
        _append(store, "b")
        for watcher in watchers:
            assert watcher.take(1)[0].version == 2
        feed: Any = _hub(store).feed
        pid = feed.backend_pid
        assert _listening(admin, pid)
        # Waiting watchers hold no pooled connection: only the listener's own, outside the pool.
        assert _pool_in_use(store) == 0
        store.delete(SID)
        for watcher in watchers:
            assert watcher.wait_ended() == []
        assert _pool_in_use(store) == 0
        assert _hub(store).watchers == 0
        assert _feeds_end()
        assert feed.backend_pid is None and _gone(admin, pid)


def test_closing_a_postgres_store_under_blocked_watchers_leaves_nothing(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    before = _threads()
    store = eventlog.connect(url)
    _append(store, "a")
    watchers = [ThreadedWatcher(store, SID) for _ in range(3)]
    for watcher in watchers:
        watcher.take(1)
    pid: Any = _hub(store).feed.backend_pid
    store.close()
    for watcher in watchers:
        assert watcher.wait_ended() == [] and watcher.error is None
    assert _gone(admin, pid)
    assert _threads() - before == set()


def test_async_watchers_release_on_aclose_on_drop_and_on_loop_shutdown(url: str) -> None:
    kept: list[Any] = []

    async def scenario() -> tuple[Any, Wakeups]:
        store = await eventlog.connect_async(url)
        await store.save_delta(SID, SessionDelta(new_entries=[Entry(id="a", payload={})]))
        hub = _hub(store)
        closed = store.watch(SID)
        assert (await anext(closed)).version == 1
        await closed.aclose()  # type: ignore[attr-defined]
        assert hub.watchers == 0
        async for change in store.watch(SID):  # dropped after a break: the loop finalizes it
            assert change.version == 1
            break
        gc.collect()
        for _ in range(20):  # the finalizer's aclose runs as a task of this loop
            await asyncio.sleep(0)
        assert hub.watchers == 0
        left_open = store.watch(SID)  # still referenced when the loop ends
        assert (await anext(left_open)).version == 1
        kept.append(left_open)
        assert hub.watchers == 1
        return store, hub

    loop = asyncio.new_event_loop()
    try:
        store, hub = loop.run_until_complete(scenario())
        loop.run_until_complete(loop.shutdown_asyncgens())  # what asyncio.run does at its end
        assert hub.watchers == 0
        loop.run_until_complete(store.close())
    finally:
        loop.close()


def test_the_notification_names_the_session_by_digest_only(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("LISTEN eventlog_changes")
    secret_sid = "customer-4711-private"
    key = watch_key(secret_sid)
    payloads: list[str] = []

    def notified_after(write: Any, *, wait: float) -> int:
        # One write at a time: the store's sender merges the notifications of
        # writes a few milliseconds apart (`_postgres.notifier`). Stops at ours.
        write()
        count = 0
        for note in admin.notifies(timeout=wait):
            payloads.append(note.payload)
            if note.payload == key:
                count += 1
                break
        return count

    with eventlog.connect(url) as store:
        a, b = (SessionDelta(new_entries=[Entry(id=i, payload={})]) for i in "ab")
        heard = NO_HANG_SECONDS  # returns as soon as the notification arrives
        assert notified_after(lambda: store.save_delta(secret_sid, a), wait=heard) == 1  # creation
        assert notified_after(lambda: store.save_delta(secret_sid, b), wait=heard) == 1  # append
        # The replayed delta wrote nothing and notified nothing.
        assert notified_after(lambda: store.save_delta(secret_sid, b), wait=0.3) == 0
        assert notified_after(lambda: store.delete(secret_sid), wait=heard) == 1
    assert not any(secret_sid in payload for payload in payloads)
    assert len(key) == 16 and secret_sid not in key


def _drain(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Notify]:
    # Other tests on the shared server notify too; the digest tells ours apart.
    return iter(list(conn.notifies(timeout=0.5)))


def test_a_store_opened_without_notify_sends_none_and_is_still_watched(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    admin.execute("LISTEN eventlog_changes")
    quiet_sid = "written-quietly"
    with eventlog.connect(url, notify=False) as quiet, eventlog.connect(url) as watching_store:
        quiet.save_delta(quiet_sid, SessionDelta(new_entries=[Entry(id="a", payload={})]))
        watcher = ThreadedWatcher(watching_store, quiet_sid)
        watcher.take(1)
        quiet.save_delta(quiet_sid, SessionDelta(new_entries=[Entry(id="b", payload={})]))
        assert watcher.take(1)[0].version == 2  # found by the watcher's safety re-read
        quiet.delete(quiet_sid)
        assert watcher.wait_ended() == []
    assert watch_key(quiet_sid) not in [note.payload for note in _drain(admin)]


def test_notify_must_be_a_bool(url: str) -> None:
    with pytest.raises(eventlog.InvalidConfigError):
        eventlog.connect(url, notify="no")
