"""Send the watchers' notifications of landed writes: one connection and thread per store.

A write does not notify inside its own transaction: a notifying transaction
takes PostgreSQL's notify lock at commit and holds it until its commit record
is flushed, so notifying writes would commit one at a time, database-wide
(and a pg_notify inside the write costs the write a statement or more). The
store hands the session's key (`watching.watch_key`) to this sender once it
knows the write landed, and the sender notifies in a transaction of its own:
every key pending a few milliseconds after the first (`_GATHER_S`) in one
statement (so one notify-lock hold serves many writes), committed without
waiting for its WAL flush (it writes nothing that must survive a crash).

A notification is a hint, never data (`_runner.wakeups`): one that never
goes out (the process ends first, the server is down, a write whose outcome
the store could not learn) costs a watcher at most its safety re-read
(`watching.SAFETY_READ_S`). A batch whose connection fails is sent once more
on a new connection, then dropped.

The connection lives on a thread with a sync connection, whether the store is
sync or async (as the listener's, `listener.py`): it belongs to no event loop.
It opens with the first notification and closes with the store.
"""

from __future__ import annotations

import threading
import time
from typing import Final

import psycopg

from .._core.log import logger
from .._core.watching import CHANNEL

__all__ = ["APPLICATION_NAME", "NOTIFY_SQL", "THREAD_NAME", "NotificationSender"]

# One transaction for all the keys given (a text[]): `true` keeps the setting local.
NOTIFY_SQL: Final = (
    "SELECT set_config('synchronous_commit', 'off', true), "
    f"pg_notify('{CHANNEL}', key) FROM unnest(%s::text[]) AS key"
)
APPLICATION_NAME: Final = "eventlog-notify"
THREAD_NAME: Final = "eventlog-pg-notify"
_ATTEMPTS: Final = 2
# After the first key of a batch, how long the sender waits for more: one
# writer's turns a few milliseconds apart then share a notifying transaction
# (each costs the server and this thread's share of the GIL), while a watcher
# still hears within a few milliseconds of the commit (the contract: 100 ms).
_GATHER_S: Final = 0.005
_JOIN_TIMEOUT_S: Final = 10.0


class NotificationSender:
    """Notifies the keys it is given (`send`), from a thread of its own, in batches.

    Thread-safe; `send` never blocks on IO, so it is safe on an event loop.
    """

    def __init__(self, url: str, *, connect_timeout: int) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._pending: dict[str, None] = {}  # an ordered set
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.backend_pid: int | None = None
        """The server process of the notification connection, while there is one."""

    def send(self, key: str) -> None:
        """Notify `key`'s watchers soon (at once if the sender is idle)."""
        with self._lock:
            if self._closed:
                return
            self._pending[key] = None
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Send what is pending, then close the connection and end the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_TIMEOUT_S)

    def _take(self) -> tuple[list[str], bool]:
        """The pending keys (taken), and whether the sender is closed."""
        self._wake.wait()
        if not self._closed:
            time.sleep(_GATHER_S)
        with self._lock:
            keys = list(self._pending)
            self._pending.clear()
            # Cleared under the lock: a key sent after this sets it again.
            self._wake.clear()
            return keys, self._closed

    def _run(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        try:
            while True:
                keys, closed = self._take()
                if keys:
                    conn = self._notify(conn, keys)
                if closed:
                    return
        finally:
            if conn is not None:
                conn.close()

    def _notify(
        self, conn: psycopg.Connection[tuple[object, ...]] | None, keys: list[str]
    ) -> psycopg.Connection[tuple[object, ...]] | None:
        """Notify `keys`; the connection to use next (None: none open)."""
        for attempt in range(_ATTEMPTS):
            try:
                if conn is None:
                    conn = psycopg.Connection.connect(
                        self._url,
                        autocommit=True,
                        connect_timeout=self._connect_timeout,
                        application_name=APPLICATION_NAME,
                    )
                    self.backend_pid = conn.info.backend_pid
                conn.execute(NOTIFY_SQL, (keys,))
                return conn
            except psycopg.Error as exc:
                logger.warning("postgres.notify_failed", sqlstate=exc.sqlstate, attempt=attempt + 1)
                if conn is not None:
                    conn.close()
                conn = None
                self.backend_pid = None
        return None
