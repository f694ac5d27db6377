"""Wake SQLite watchers when the file changes: `PRAGMA data_version` polled on its own connection.

`data_version` changes when any other connection, in this process or another,
commits to the database; asking costs no disk read in WAL mode (it reads the
shared-memory index). One thread per store polls it while anyone watches
and wakes every watcher of the store, which then reads its session's version.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import suppress
from typing import Final

from .._core.log import logger
from .._runner.wakeups import Wakeups

__all__ = ["POLL_INTERVAL_S", "ChangeCounterFeed"]

# Well inside the 100 ms a watcher promises; a poll is one shared-memory read.
POLL_INTERVAL_S: Final = 0.025
_JOIN_TIMEOUT_S: Final = 5.0


class ChangeCounterFeed:
    """Polls the file's change counter on a thread, while the hub has watchers."""

    def __init__(self, hub: Wakeups, open_connection: Callable[[], sqlite3.Connection]) -> None:
        self._hub = hub
        self._open = open_connection
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._poll, args=(self._stop,), name="eventlog-sqlite-watch", daemon=True
            )
            self._thread.start()

    def stop(self, *, wait: bool) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()  # this thread's own event: a later start makes a new one
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)

    def _poll(self, stop: threading.Event) -> None:
        conn: sqlite3.Connection | None = None
        seen: int | None = None
        try:
            while not stop.wait(POLL_INTERVAL_S if conn is not None else 0.0):
                try:
                    if conn is None:
                        conn = self._open()
                    (version,) = conn.execute("PRAGMA data_version").fetchone()
                except sqlite3.Error as exc:
                    code = getattr(exc, "sqlite_errorname", None)
                    logger.warning("sqlite.watch_poll_failed", code=code)
                    if conn is not None:
                        with suppress(sqlite3.Error):
                            conn.close()
                    conn = None
                    seen = None
                    stop.wait(POLL_INTERVAL_S * 4)
                    continue
                if version != seen:
                    # The first read wakes everyone too: a write between a
                    # watcher's read and this thread's start is not missed.
                    seen = version
                    self._hub.notify_all()
        finally:
            if conn is not None:
                with suppress(sqlite3.Error):
                    conn.close()
