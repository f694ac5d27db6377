"""The watchers' notification goes after a write's COMMIT: a connection lost in between.

A write and its `pg_notify` are two transactions (the notify lock would
otherwise serialize every notifying commit), sent in one pipeline. If the
connection is lost after the server ran the COMMIT but before it saw the
notification, the write is committed and nobody is notified: the writer gets
`CommitOutcomeUnknownError` (it saw no reply; a retry is a no-op), and a
watcher still gets the version at its safety re-read.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import eventlog
from eventlog import CommitOutcomeUnknownError, Entry, SessionDelta
from eventlog._core.watching import CHANNEL, watch_key
from eventlog.postgres import PostgresStore
from eventlog.testing.threads import NO_HANG_SECONDS
from eventlog.testing.watcher import ThreadedWatcher

from .proxy import Proxy, Verdict

SID = "cut-before-notify"


class _CutBeforeNotify:
    """A proxy judge: cuts the connection right before the message that binds the
    notification of `key` (so the server never runs it), passing on all before it.

    It follows the client's messages across bursts (psycopg may flush a
    pipeline in pieces, and a message may straddle two), starting at a
    message boundary: installed between two calls.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._partial = b""  # the start of a message that the next burst completes
        self.cut = False

    def __call__(self, data: bytes) -> Verdict:
        if self.cut:
            return "forward"
        stream = self._partial + data
        start = 0
        while start + 5 <= len(stream):
            kind = stream[start : start + 1]
            (length,) = struct.unpack_from("!i", stream, start + 1)
            end = start + 1 + length
            if kind == b"B" and self._key in stream[start:end]:
                self.cut = True
                # A Bind partly passed on already is never run: its rest never arrives.
                return max(0, start - len(self._partial))
            if end > len(stream):
                break
            start = end
        self._partial = stream[start:]
        return "forward"


def _delta(entry_id: str) -> SessionDelta:
    return SessionDelta(new_entries=[Entry(id=entry_id, payload={"n": entry_id})])


@pytest.fixture
def proxy(server_dsn: str) -> Iterator[Proxy]:
    opened = Proxy(server_dsn)
    try:
        yield opened
    finally:
        opened.close()


def test_a_write_committed_without_its_notification_still_reaches_the_watcher(
    proxy: Proxy, url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    key = watch_key(SID).encode()
    admin.execute(f"LISTEN {CHANNEL}")
    writer = PostgresStore.open(
        proxy.conninfo(options=f"-csearch_path={schema}"), min_size=1, max_size=1, timeout=5
    )
    with writer, eventlog.connect(url) as watching_store:
        writer.save_delta(SID, _delta("a"))
        watcher = ThreadedWatcher(watching_store, SID)
        assert [change.version for change in watcher.take(1)] == [1]
        list(admin.notifies(timeout=0.2))  # the first write's notification
        judge = _CutBeforeNotify(key)
        proxy.judge = judge
        with pytest.raises(CommitOutcomeUnknownError):
            writer.save_delta(SID, _delta("b"))
        proxy.judge = lambda data: "forward"
        assert judge.cut, "the write carried no notification"
        # Committed on the server all the same, and never notified.
        deadline = time.monotonic() + NO_HANG_SECONDS
        while True:
            row = admin.execute(
                f"SELECT version FROM {schema}.sessions WHERE session_id = %s", (SID,)
            ).fetchone()
            assert row is not None
            if row[0] == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert row[0] == 2
        # The watcher finds it anyway (its safety re-read), within its timeout.
        assert [change.version for change in watcher.take(1)] == [2]
        assert key.decode() not in [note.payload for note in admin.notifies(timeout=0.5)]
        # The writer's retry after the unknown outcome is a no-op.
        assert writer.save_delta(SID, _delta("b")).skipped == ("b",)
        watching_store.delete(SID)
        assert watcher.wait_ended() == []
