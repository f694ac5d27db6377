"""The watchers' notification goes after a write landed, from the store's own connection.

A write does not notify in its own transaction (`_postgres.notifier`): the
store notifies once it knows the write landed. So a write whose reply is lost
(the outcome unknown to the store) is never notified, and a watcher still gets
it at its safety re-read; a write that wrote nothing (a replay) notifies
nobody; and a notification connection the server dropped is replaced.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

import eventlog
from eventlog import CommitOutcomeUnknownError, Entry, SessionDelta
from eventlog._core import watching
from eventlog._core.watching import CHANNEL, watch_key
from eventlog._postgres.notifier import APPLICATION_NAME
from eventlog.postgres import PostgresStore
from eventlog.testing.threads import NO_HANG_SECONDS
from eventlog.testing.watcher import ThreadedWatcher

from .proxy import Proxy, cut_at_commit

SID = "notified-after-commit"


def _delta(entry_id: str) -> SessionDelta:
    return SessionDelta(new_entries=[Entry(id=entry_id, payload={"n": entry_id})])


def _notified(admin: psycopg.Connection[Any], key: str, *, timeout: float) -> int:
    """How many notifications of `key` arrive within `timeout` (others' are ignored)."""
    return [note.payload for note in admin.notifies(timeout=timeout)].count(key)


def _arrives(admin: psycopg.Connection[Any], key: str) -> bool:
    """Whether a notification of `key` arrives (before the hang guard's time)."""
    return any(note.payload == key for note in admin.notifies(timeout=NO_HANG_SECONDS))


def _wait_for_version(admin: psycopg.Connection[Any], schema: str, version: int) -> int:
    deadline = time.monotonic() + NO_HANG_SECONDS
    while True:
        row = admin.execute(
            f"SELECT version FROM {schema}.sessions WHERE session_id = %s", (SID,)
        ).fetchone()
        assert row is not None
        if row[0] == version or time.monotonic() > deadline:
            return int(row[0])
        time.sleep(0.02)


def test_a_write_whose_reply_was_lost_is_not_notified_and_still_reaches_the_watcher(
    proxy: Proxy,
    url: str,
    schema: str,
    admin: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(watching, "SAFETY_READ_S", 0.2)  # a shorter wait, the same path
    key = watch_key(SID)
    admin.execute(f"LISTEN {CHANNEL}")
    writer = PostgresStore.open(
        proxy.conninfo(options=f"-csearch_path={schema}"), min_size=1, max_size=1, timeout=5
    )
    with writer, eventlog.connect(url) as watching_store:
        writer.save_delta(SID, _delta("a"))
        watcher = ThreadedWatcher(watching_store, SID)
        assert [change.version for change in watcher.take(1)] == [1]
        assert _arrives(admin, key)
        # b's write is one statement committed by the Sync after it: pass both
        # on, then drop the connection before the reply.
        proxy.judge = cut_at_commit(b'{"n":"b"}')
        with pytest.raises(CommitOutcomeUnknownError):
            writer.save_delta(SID, _delta("b"))
        proxy.judge = lambda data: "forward"
        assert _wait_for_version(admin, schema, 2) == 2  # committed all the same
        # Never notified; the watcher finds it at its safety re-read.
        assert [change.version for change in watcher.take(1)] == [2]
        assert _notified(admin, key, timeout=0.2) == 0
        # The retry after the unknown outcome is a no-op, and notifies nobody.
        assert writer.save_delta(SID, _delta("b")).skipped == ("b",)
        assert _notified(admin, key, timeout=0.2) == 0
        watching_store.delete(SID)
        assert watcher.wait_ended() == []


def test_a_notification_connection_the_server_dropped_is_replaced(
    url: str, admin: psycopg.Connection[Any]
) -> None:
    key = watch_key(SID)
    admin.execute(f"LISTEN {CHANNEL}")
    with eventlog.connect(url) as store:
        store.save_delta(SID, _delta("a"))
        assert _arrives(admin, key)
        notifier = store._notifier  # type: ignore[attr-defined]
        pid = notifier.backend_pid
        row = admin.execute(
            "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        assert row == (APPLICATION_NAME,)
        admin.execute("SELECT pg_terminate_backend(%s::integer)", (pid,))
        # The next batch fails on the dead connection and goes again on a new one.
        store.save_delta(SID, _delta("b"))
        assert _arrives(admin, key)
        assert notifier.backend_pid not in (None, pid)
        store.delete(SID)
