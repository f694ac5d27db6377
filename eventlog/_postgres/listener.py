"""Wake PostgreSQL watchers on LISTEN/NOTIFY: one listening connection per store, on a thread.

Every write of a store notifies the channel `watching.CHANNEL` in its own
transaction, with the session's key (`watching.watch_key`, a digest) as the
payload; PostgreSQL delivers it at commit, to listeners in any process. This
feed holds one dedicated connection (outside the pool, so watchers never take
pooled connections away from writers) for all the store's watchers, and
wakes the watchers of each key it hears.

The connection lives on a thread with a sync connection, whether the store is
sync or async, so it belongs to no event loop: an `AsyncPostgresStore` is used
from many loops. After the server drops it (a restart), the thread connects
again and wakes every watcher: notifications sent while it was not listening
are lost, so each watcher reads its session again from the last version it
yielded.
"""

from __future__ import annotations

import threading
from contextlib import suppress
from typing import Final

import psycopg

from .._core.log import logger
from .._core.watching import CHANNEL
from .._runner.wakeups import Wakeups

__all__ = ["NotificationFeed"]

# How often the thread looks up from its socket to see whether to stop.
_STOP_CHECK_S: Final = 0.1
_FIRST_BACKOFF_S: Final = 0.05
_MAX_BACKOFF_S: Final = 2.0
_JOIN_TIMEOUT_S: Final = 10.0
APPLICATION_NAME: Final = "eventlog-watch"


class NotificationFeed:
    """LISTENs on one connection while the hub has watchers; reconnects after a drop."""

    def __init__(self, hub: Wakeups, url: str, *, connect_timeout: int) -> None:
        self._hub = hub
        self._url = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.connections = 0
        """How many times the feed has started listening (a restart adds one)."""
        self.backend_pid: int | None = None
        """The server process of the listening connection, while there is one."""

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._listen, args=(self._stop,), name="eventlog-pg-watch", daemon=True
            )
            self._thread.start()

    def stop(self, *, wait: bool) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()  # this thread's own event: a later start makes a new one
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        conn = psycopg.Connection.connect(
            self._url,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name=APPLICATION_NAME,
        )
        try:
            conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _listen(self, stop: threading.Event) -> None:
        backoff = _FIRST_BACKOFF_S
        while not stop.is_set():
            try:
                conn = self._connect()
            except psycopg.Error as exc:
                logger.warning("postgres.watch_connect_failed", sqlstate=exc.sqlstate)
                stop.wait(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            backoff = _FIRST_BACKOFF_S
            self.backend_pid = conn.info.backend_pid
            self.connections += 1
            # Listening now; whatever committed before is found by reading.
            self._hub.notify_all()
            try:
                while not stop.is_set():
                    for note in conn.notifies(timeout=_STOP_CHECK_S):
                        self._hub.notify(note.payload)
                        if stop.is_set():
                            break
            except psycopg.Error as exc:
                logger.warning("postgres.watch_connection_lost", sqlstate=exc.sqlstate)
            finally:
                self.backend_pid = None
                with suppress(psycopg.Error):
                    conn.close()
