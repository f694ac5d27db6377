"""Scenarios 4 and 5: connections lost at the worst moments on Postgres, callers retrying.

4. A TCP proxy on 127.0.0.1 drops the connection right after forwarding COMMIT
   (the reply never arrives), 50 times; the caller retries the same delta.
5. 100 `pg_terminate_backend` calls at random moments while 4 threads write.

In both, the end state must be exactly-once, and the only errors callers see
are eventlog's (CommitOutcomeUnknownError, StoreUnavailableError), never a raw
psycopg one. Each has broken variants the checker must catch: a caller that
does not retry (loss) and a store with idempotency switched off (duplication).
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pgserver
import psycopg
import pytest
from postgres.proxy import Proxy, Verdict

from eventlog import (
    CommitOutcomeUnknownError,
    Entry,
    SessionDelta,
    StoreUnavailableError,
)
from eventlog._core.operations import Operation
from eventlog._core.records import Record, SessionState
from eventlog._runner.runner import LogStore, Transaction
from eventlog.postgres import PostgresStore

from .checker import RawRows, check_session, postgres_rows
from .checker import Verdict as CheckVerdict
from .figures import Figures, measured

T = TypeVar("T")

pytestmark = pytest.mark.fault

RETRYABLE = (CommitOutcomeUnknownError, StoreUnavailableError)
PAYLOAD_MARK = b'"mark"'
SYNC = b"S\x00\x00\x00\x04"  # the protocol's Sync message, which ends a pipeline
FLUSH = b"H\x00\x00\x00\x04"  # a Flush, which psycopg may send after it


def _ends_with_sync(data: bytes) -> bool:
    for _ in range(len(data) // len(FLUSH) + 1):  # strip trailing Flush messages
        if not data.endswith(FLUSH):
            break
        data = data[: -len(FLUSH)]
    return data.endswith(SYNC)


# Four of five lost replies follow a COMMIT that reached the server; one a COMMIT
# that never left the proxy.
MIXED_CUTS: list[Verdict] = [
    "forward_then_cut",
    "forward_then_cut",
    "forward_then_cut",
    "forward_then_cut",
    "cut",
]
MAX_ATTEMPTS = 20  # per delta: a bound, far above what a healthy run needs


class _Proxy(Proxy):
    """The tests' proxy with Nagle's algorithm off, so a write costs milliseconds, not the
    40 ms of a delayed ACK per burst."""

    def _accept(self) -> None:
        super()._accept()
        for sock in self._peers:
            if sock.family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _BlindTransaction:
    """A write transaction that never finds stored ids: every retry appends again."""

    def __init__(self, inner: Transaction) -> None:
        self._inner = inner

    def state_and_latest(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> tuple[SessionState | None, dict[str, Record]]:
        state, _ = self._inner.state_and_latest(session_id, entry_ids)
        return state, {}

    def latest_records(self, session_id: str, entry_ids: Sequence[str]) -> dict[str, Record]:
        return {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _NoIdempotencyPostgresStore(PostgresStore):
    """Broken on purpose (tests only): idempotency by entry id switched off."""

    def _execute(self, operation: Operation[T]) -> T:
        # Every write on the locking path, where the blind transaction is used.
        return LogStore._execute(self, operation)

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        with super()._write() as tx:
            yield _BlindTransaction(tx)


def _drop_live_id_index(dsn: str, schema: str) -> None:
    # Without the lookup, the partial unique index would still refuse a second
    # live row; the broken variant removes it so the checker is the only guard.
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP INDEX {schema}.entries_live_entry_id")


def _entries(index: int, count: int) -> list[Entry]:
    return [
        Entry(f"d{index}-{part}", None, "message", None, {"index": index, "mark": part})
        for part in range(count)
    ]


def _save_with_retries(
    store: PostgresStore,
    session_id: str,
    delta: SessionDelta,
    *,
    retry: bool,
    errors: dict[str, int],
    lock: threading.Lock,
) -> None:
    """Save; on an unknown or failed outcome retry the same delta (unless `retry` is off,
    when the caller wrongly takes the failure for success)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            result = store.save_delta(session_id, delta)
        except RETRYABLE as error:
            with lock:
                errors[type(error).__name__] = errors.get(type(error).__name__, 0) + 1
            if not retry:
                return
            if attempt == MAX_ATTEMPTS:
                raise
            time.sleep(0.005 * attempt)
            continue
        if attempt > 1:
            # How the retry resolved the unknown outcome: found it landed, or wrote it.
            outcome = "retry found it landed" if result.skipped else "retry wrote it"
            with lock:
                errors[outcome] = errors.get(outcome, 0) + 1
        return


def _tally(
    store: PostgresStore, raw_rows: RawRows, acknowledged: dict[str, list[str]], figures: Figures
) -> list[CheckVerdict]:
    verdicts = [check_session(store, raw_rows, sid, ids) for sid, ids in acknowledged.items()]
    figures.lost = sum(len(v.lost) for v in verdicts)
    figures.duplicated = sum(len(v.duplicated) for v in verdicts)
    return verdicts


# -- scenario 4: lost COMMIT replies ---------------------------------------------


def _lost_commit_replies(
    dsn: str,
    schema: str,
    figures: Figures,
    *,
    faults: int,
    cuts: Sequence[Verdict],
    retry: bool,
    store_class: type[PostgresStore] = PostgresStore,
) -> tuple[list[CheckVerdict], dict[str, int]]:
    """One writer, deltas of 3 entries over 4 sessions; `faults` of them lose their COMMIT
    reply, taking turns through `cuts` (forwarded then cut, or cut before sending)."""
    rng = random.Random(4)
    proxy = _Proxy(dsn)
    armed = threading.Event()
    in_commit = threading.Event()
    cut = [0]

    def judge(data: bytes) -> Verdict:
        # Payloads travel only in the pipeline that inserts them and COMMITs
        # (COMMIT itself may go as a prepared statement, not as text); the
        # pipeline's last burst ends with Sync: cut right after forwarding it.
        # A "cut" (COMMIT never sent) drops the burst with the payloads itself.
        if armed.is_set() and PAYLOAD_MARK in data:
            in_commit.set()
        verdict = cuts[cut[0] % len(cuts)]
        if in_commit.is_set() and (verdict == "cut" or _ends_with_sync(data)):
            in_commit.clear()
            armed.clear()
            cut[0] += 1
            return verdict
        return "forward"

    proxy.judge = judge
    errors: dict[str, int] = {}
    lock = threading.Lock()
    acknowledged: dict[str, list[str]] = {f"s{n}": [] for n in range(4)}
    try:
        store = store_class.open(
            proxy.conninfo(options=f"-csearch_path={schema}"),
            min_size=1,
            max_size=2,
            timeout=5,
            notify=False,  # the notifier's own connection would pass the proxy too
        )
        try:
            deltas = 0
            for index in range(faults * 4):  # bounded; ends once enough faults landed
                if cut[0] >= faults and deltas >= faults * 3:
                    break
                if cut[0] < faults and rng.random() < 0.4:
                    armed.set()
                entries = _entries(index, 3)
                session_id = f"s{index % 4}"
                _save_with_retries(
                    store,
                    session_id,
                    SessionDelta(entries, leaf_id=entries[-1].id),
                    retry=retry,
                    errors=errors,
                    lock=lock,
                )
                armed.clear()
                deltas += 1
                acknowledged[session_id].extend(entry.id for entry in entries)
            proxy.judge = lambda data: "forward"
            figures.operations, figures.faults = deltas, cut[0]
            verdicts = _tally(store, postgres_rows(dsn, schema), acknowledged, figures)
        finally:
            store.close()
    finally:
        proxy.close()
    figures.notes = ", ".join(f"{count} {name}" for name, count in sorted(errors.items()))
    return verdicts, errors


def test_fifty_lost_commit_replies_with_retries_are_exactly_once(
    server_dsn: str, schema: str
) -> None:
    with measured("4. lost COMMIT replies, caller retries", "postgres") as figures:
        verdicts, errors = _lost_commit_replies(
            server_dsn,
            schema,
            figures,
            faults=50,
            cuts=MIXED_CUTS,
            retry=True,
        )
    assert figures.faults == 50
    # Every lost reply was resolved by the retry, one way or the other. A "cut" never
    # sends COMMIT, so its retry writes (10 of them). A "forward_then_cut" passes the
    # burst on first and its retry usually finds the write landed; on a loaded machine
    # 1 to 3 of the 40 did not land (seen in 2 of 3 runs; base f5a26a2 too), so the
    # proxy's cut does not always fall after the server has the COMMIT. Exactly-once,
    # the property under test, held in every run.
    # On Citus the write is one call the coordinator forwards to a worker; a cut
    # that falls while the worker runs it makes the coordinator cancel it there, so
    # a "forward_then_cut" lands or not by timing (27 of 40 landed in the first
    # run): only the split changes, and exactly-once is checked all the same.
    landed, wrote = errors.get("retry found it landed", 0), errors.get("retry wrote it", 0)
    assert landed + wrote == 50 and wrote >= 10, errors
    assert pgserver.CITUS_DSN or landed >= 30, errors
    # Each lost reply reached the caller as CommitOutcomeUnknownError, nothing else.
    assert errors["CommitOutcomeUnknownError"] == 50
    assert set(errors) <= {"CommitOutcomeUnknownError", "retry found it landed", "retry wrote it"}
    assert all(v.exactly_once for v in verdicts), verdicts


def test_broken_caller_without_retry_loses_writes(server_dsn: str, schema: str) -> None:
    """Broken on purpose: COMMIT never reaches the server and the caller does not retry."""
    with measured(
        "4. broken: no retry after unknown outcome", "postgres", broken_variant=True
    ) as figures:
        verdicts, _ = _lost_commit_replies(
            server_dsn, schema, figures, faults=10, cuts=["cut"], retry=False
        )
    assert figures.faults == 10
    assert sum(len(v.lost) for v in verdicts) == 30  # 3 entries per lost delta


def test_broken_store_without_idempotency_duplicates_on_retry(server_dsn: str, schema: str) -> None:
    """Broken on purpose: the store does not look up stored ids, so a retry appends again."""
    url = pgserver.with_search_path(server_dsn, schema)
    PostgresStore.open(url).close()  # create the schema, then take its guard away
    _drop_live_id_index(server_dsn, schema)
    with measured(
        "4. broken: idempotency off, caller retries", "postgres", broken_variant=True
    ) as figures:
        verdicts, _ = _lost_commit_replies(
            server_dsn,
            schema,
            figures,
            faults=10,
            cuts=["forward_then_cut"],
            retry=True,
            store_class=_NoIdempotencyPostgresStore,
        )
    assert sum(len(v.duplicated) for v in verdicts) == 30


# -- scenario 5: backends terminated at random ------------------------------------


def _terminations(
    dsn: str,
    schema: str,
    figures: Figures,
    *,
    kills: int,
    retry: bool,
    enough: Callable[[dict[str, int]], bool] = lambda errors: False,
) -> tuple[list[CheckVerdict], dict[str, int]]:
    """4 writer threads on 8 shared sessions; a killer terminates their backends."""
    app = f"eventlog-{schema}"
    url = f"{pgserver.with_search_path(dsn, schema)}&application_name={app}"
    store = PostgresStore.open(url, min_size=4, max_size=4, timeout=10)
    stop = threading.Event()
    lock = threading.Lock()
    errors: dict[str, int] = {}
    acknowledged: dict[str, list[str]] = {f"k{n}": [] for n in range(8)}
    counts = [0, 0]  # deltas acknowledged, backends terminated
    failures: list[BaseException] = []

    def write(thread: int) -> None:
        try:
            for turn in range(5000):  # bounded; the killer normally stops us first
                if stop.is_set():
                    return
                entries = _entries(thread * 10_000 + turn, 2)
                session_id = f"k{(thread + turn) % 8}"
                _save_with_retries(
                    store,
                    session_id,
                    SessionDelta(entries),
                    retry=retry,
                    errors=errors,
                    lock=lock,
                )
                with lock:
                    counts[0] += 1
                    acknowledged[session_id].extend(entry.id for entry in entries)
        except BaseException as error:
            failures.append(error)

    def kill() -> None:
        rng = random.Random(5)
        with psycopg.connect(dsn, autocommit=True) as admin:
            for _ in range(kills * 20):  # bounded: most rounds find a backend to end
                if counts[1] >= kills or enough(errors) or failures:
                    return
                time.sleep(rng.uniform(0.0, 0.02))
                pids = [
                    row[0]
                    for row in admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                        "AND backend_type = 'client backend'",
                        (app,),
                    )
                ]
                if not pids:
                    continue
                row = admin.execute(
                    "SELECT pg_terminate_backend(%s::integer)", (rng.choice(pids),)
                ).fetchone()
                if row is not None and row[0]:
                    counts[1] += 1

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    try:
        for writer in writers:
            writer.start()
        kill()
        time.sleep(0.2)  # the pool recovers and the writers go on after the last kill
        stop.set()
        for writer in writers:
            writer.join(60)
        assert not any(writer.is_alive() for writer in writers), "a writer hangs"
        if failures:
            raise failures[0]
        figures.operations, figures.faults = counts
        verdicts = _tally(store, postgres_rows(dsn, schema), acknowledged, figures)
    finally:
        stop.set()
        store.close()
    figures.notes = ", ".join(f"{count} {name}" for name, count in sorted(errors.items()))
    return verdicts, errors


def test_hundred_backend_terminations_with_retries_are_exactly_once(
    server_dsn: str, schema: str
) -> None:
    with measured("5. 100 pg_terminate_backend, 4 threads retrying", "postgres") as figures:
        verdicts, errors = _terminations(server_dsn, schema, figures, kills=100, retry=True)
    assert figures.faults == 100
    assert set(errors) <= {
        "CommitOutcomeUnknownError",
        "StoreUnavailableError",
        "retry found it landed",
        "retry wrote it",
    }
    assert all(v.exactly_once for v in verdicts), [v for v in verdicts if not v.exactly_once]


def test_broken_caller_without_retry_loses_writes_on_terminations(
    server_dsn: str, schema: str
) -> None:
    """Broken on purpose: the caller takes a failed write for a done one."""
    with measured(
        "5. broken: no retry after a failed write", "postgres", broken_variant=True
    ) as figures:
        verdicts, errors = _terminations(
            server_dsn,
            schema,
            figures,
            kills=100,
            retry=False,
            enough=lambda errors: _failed_writes(errors) >= 10,
        )
    assert _failed_writes(errors) >= 1
    assert sum(len(v.lost) for v in verdicts) >= 2


def _failed_writes(errors: dict[str, int]) -> int:
    # A backend killed during the reads is replaced and the call goes on; one
    # killed in the write statement leaves the outcome unknown to the caller.
    return errors.get("StoreUnavailableError", 0) + errors.get("CommitOutcomeUnknownError", 0)
