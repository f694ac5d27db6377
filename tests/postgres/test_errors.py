"""Postgres failures reach callers as eventlog errors that say what to fix.

Every test here also checks the type: no psycopg (or psycopg_pool) exception
may escape the public API.
"""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Iterator
from typing import Any

import pgserver
import psycopg
import psycopg_pool
import pytest
from psycopg import errors as pg_errors

import eventlog
from eventlog import (
    AccessDeniedError,
    CommitOutcomeUnknownError,
    ConcurrencyError,
    CorruptionError,
    Entry,
    EventlogError,
    InvalidConfigError,
    SessionDelta,
    StatementCancelledError,
    StoreError,
    StoreUnavailableError,
)
from eventlog._postgres import errors as error_translation
from eventlog.postgres import PostgresStore

from .proxy import Proxy, cut_at_commit

SENTINEL = "SENTINEL-row-value-81d2"
# A hang guard, not a speed test: an unreachable server must fail, not wait forever.
NO_HANG_SECONDS = 30


def delta(*ids: str) -> SessionDelta:
    return SessionDelta(
        new_entries=[Entry(id=entry_id, payload={"n": entry_id}) for entry_id in ids]
    )


def _assert_eventlog_error(error: BaseException) -> None:
    assert isinstance(error, EventlogError), type(error)
    assert not isinstance(error, psycopg.Error | psycopg_pool.PoolTimeout)
    assert error.__cause__ is None or not isinstance(error.__cause__, psycopg.Error)


# check_url only parses the URL's syntax; libpq rejects a bad value only when
# connecting, which the store reports as StoreUnavailableError.
# -- opening -------------------------------------------------------------------


def test_refused_port_is_store_unavailable_naming_host_and_port() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as caught:
        eventlog.connect("postgresql://postgres@127.0.0.1:1/test", timeout=2)
    assert time.monotonic() - started < NO_HANG_SECONDS
    assert "127.0.0.1" in str(caught.value)
    assert "port 1" in str(caught.value)


def test_silent_host_times_out_instead_of_hanging() -> None:
    # 10.255.255.1 is not routed here: either the network says so at once or
    # the connect timeout fires.
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError):
        eventlog.connect("postgresql://postgres@10.255.255.1:5432/test", timeout=1)
    assert time.monotonic() - started < NO_HANG_SECONDS


def test_missing_database_is_named(server_dsn: str) -> None:
    dsn = psycopg.conninfo.make_conninfo(server_dsn, dbname="eventlog_no_such_db")
    with pytest.raises(StoreUnavailableError) as caught:
        PostgresStore.open(dsn, timeout=5)
    assert "eventlog_no_such_db" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_rejected_login_names_the_user_never_the_password(server_dsn: str) -> None:
    dsn = psycopg.conninfo.make_conninfo(
        server_dsn, user="eventlog_no_such_role", password=SENTINEL
    )
    with pytest.raises(StoreUnavailableError) as caught:
        PostgresStore.open(dsn, timeout=5)
    assert "eventlog_no_such_role" in str(caught.value)
    assert SENTINEL not in str(caught.value)
    assert SENTINEL not in repr(caught.value.__reduce__())


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://[::1",
        "postgresql://host/db?no_such_option=1",
        "postgresql://%zz@host/db",
        "postgresql://127.0.0.1:notaport/db",
        "postgresql://127.0.0.1/db?connect_timeout=soon",
    ],
)
def test_bad_url_is_invalid_config(url: str) -> None:
    with pytest.raises(InvalidConfigError):
        eventlog.connect(url, timeout=2)


@pytest.mark.parametrize(
    "options",
    [{"min_size": 0}, {"min_size": 3, "max_size": 2}, {"partitions": 0}, {"no_such": 1}],
)
def test_bad_option_is_invalid_config(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfigError):
        eventlog.connect(url, **options)


# -- while running -------------------------------------------------------------


@pytest.fixture
def store(url: str) -> Iterator[eventlog.Store]:
    with eventlog.connect(url, min_size=1, max_size=1, timeout=2) as opened:
        yield opened


def _backend_pids(admin: psycopg.Connection[Any], schema: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
        "AND datname = current_database() AND query NOT LIKE '%%pg_stat_activity%%' "
        "AND backend_type = 'client backend' AND application_name = %s",
        (f"eventlog-{schema}",),
    ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def named_store(url: str, schema: str) -> Iterator[eventlog.Store]:
    """A store whose connections carry the test's application_name (to find and kill them)."""
    named = f"{url}&application_name=eventlog-{schema}"
    with eventlog.connect(named, min_size=1, max_size=1, timeout=2) as opened:
        yield opened


def test_killed_idle_connection_then_next_call_is_an_eventlog_error_or_works(
    named_store: eventlog.Store, admin: psycopg.Connection[Any], schema: str
) -> None:
    named_store.save_delta("s", delta("a"))
    pids = _backend_pids(admin, schema)
    assert pids
    for pid in pids:
        admin.execute("SELECT pg_terminate_backend(%s::integer)", (pid,))
    outcomes: list[object] = []
    for call in (
        lambda: named_store.load("s"),
        lambda: named_store.save_delta("s", delta("b")),
        lambda: named_store.list_sessions(),
    ):
        try:
            outcomes.append(call())
        except Exception as error:
            _assert_eventlog_error(error)
            outcomes.append(error)
    loaded = named_store.load("s")
    assert loaded is not None
    assert next(entry.id for entry in loaded.entries) == "a"


def _killed_while_waiting_for_a_lock(
    store: eventlog.Store, admin: psycopg.Connection[Any], schema: str, call: Any
) -> BaseException:
    """Run `call` while another connection holds the session's index row locked, and
    terminate the backend that waits for that lock; return what `call` raised."""
    blocker = psycopg.connect(admin.info.dsn)
    blocker.execute(f"SELECT 1 FROM {schema}.sessions WHERE session_id = 's' FOR UPDATE")
    caught: list[BaseException] = []

    def write() -> None:
        try:
            call()
        except BaseException as error:
            caught.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + NO_HANG_SECONDS
    while time.monotonic() < deadline:
        waiting = pgserver.lock_waiting_pids(admin, f"eventlog-{schema}")
        if waiting:
            break
        time.sleep(0.02)
    assert waiting
    admin.execute("SELECT pg_terminate_backend(%s::integer)", (waiting[0],))
    writer.join(NO_HANG_SECONDS)
    blocker.rollback()
    blocker.close()
    assert len(caught) == 1
    _assert_eventlog_error(caught[0])
    return caught[0]


def test_connection_killed_mid_transaction_is_store_unavailable(
    named_store: eventlog.Store, admin: psycopg.Connection[Any], schema: str
) -> None:
    # purge takes the locking path: it waits for the lock before writing anything.
    named_store.save_delta("s", delta("a"))
    error = _killed_while_waiting_for_a_lock(
        named_store, admin, schema, lambda: named_store.purge("s")
    )
    assert isinstance(error, StoreUnavailableError)
    loaded = named_store.load("s")
    assert loaded is not None
    assert [entry.id for entry in loaded.entries] == ["a"]
    named_store.save_delta("s", delta("b"))


def test_connection_killed_in_the_one_write_statement_is_outcome_unknown(
    named_store: eventlog.Store, admin: psycopg.Connection[Any], schema: str
) -> None:
    # save_delta's write is one statement (its own commit): once it was sent, a
    # lost connection leaves the outcome unknown, and a retry is exactly once.
    named_store.save_delta("s", delta("a"))
    error = _killed_while_waiting_for_a_lock(
        named_store, admin, schema, lambda: named_store.save_delta("s", delta("b"))
    )
    assert isinstance(error, CommitOutcomeUnknownError)
    named_store.save_delta("s", delta("b"))
    loaded = named_store.load("s")
    assert loaded is not None
    assert [entry.id for entry in loaded.entries] == ["a", "b"]


def test_pool_exhausted_is_store_unavailable(
    store: eventlog.Store, admin: psycopg.Connection[Any], schema: str
) -> None:
    store.save_delta("s", delta("a"))
    blocker = psycopg.connect(admin.info.dsn)
    blocker.execute(f"SELECT 1 FROM {schema}.sessions WHERE session_id = 's' FOR UPDATE")
    writer = threading.Thread(target=lambda: store.save_delta("s", delta("b")))
    writer.start()
    time.sleep(0.3)  # let the writer take the only connection and wait on the lock
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            store.load("other")
        assert "pool" in str(caught.value)
    finally:
        blocker.rollback()
        blocker.close()
        writer.join(NO_HANG_SECONDS)
    loaded = store.load("s")
    assert loaded is not None
    assert [entry.id for entry in loaded.entries] == ["a", "b"]


@pytest.mark.parametrize("landed", [True, False], ids=["commit-landed", "commit-lost"])
def test_lost_commit_reply_is_commit_outcome_unknown(
    server_dsn: str, schema: str, admin: psycopg.Connection[Any], landed: bool
) -> None:
    proxy = Proxy(server_dsn)
    try:
        store = PostgresStore.open(
            proxy.conninfo(options=f"-csearch_path={schema}"),
            min_size=1,
            max_size=1,
            timeout=5,
            notify=False,  # the notifier's own connection would pass the proxy too
        )
        try:
            store.save_delta("s", delta("a"))
            # The write carries b's payload, and is save_delta's commit: one
            # statement in autocommit mode, after the tenant's setting, in one
            # implicit transaction that the Sync ending the pipeline commits.
            # "landed" cuts the connection once the Sync after b has gone through.
            proxy.judge = cut_at_commit(b'{"n":"b"}', landed=landed)
            with pytest.raises(CommitOutcomeUnknownError) as caught:
                store.save_delta("s", delta("b", "c"))
            _assert_eventlog_error(caught.value)
            proxy.judge = lambda data: "forward"
            # The write is idempotent, so replaying it after an unknown outcome is safe.
            deadline = time.monotonic() + NO_HANG_SECONDS
            while True:
                rows = admin.execute(
                    f"SELECT count(*) FROM {schema}.entries WHERE session_id = 's'"
                ).fetchone()
                assert rows is not None
                if rows[0] == (3 if landed else 1) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert rows[0] == (3 if landed else 1)
            result = store.save_delta("s", delta("b", "c"))
            assert (result.skipped if landed else result.appended) == ("b", "c")
            loaded = store.load("s")
            assert loaded is not None
            assert [entry.id for entry in loaded.entries] == ["a", "b", "c"]
        finally:
            store.close()
    finally:
        proxy.close()


# -- the translation table -----------------------------------------------------


def _all_psycopg_errors() -> list[type[psycopg.Error]]:
    found: list[type[psycopg.Error]] = []
    todo: list[type[psycopg.Error]] = [psycopg.Error]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(set(found), key=lambda cls: cls.__qualname__)


@pytest.mark.parametrize("committing", [False, True], ids=["in-transaction", "committing"])
def test_every_psycopg_error_becomes_an_eventlog_error(committing: bool) -> None:
    classes = _all_psycopg_errors()
    assert len(classes) > 200  # one per SQLSTATE, plus the DB-API classes
    for cls in classes:
        error = cls(f"primary message\nDETAIL:  Key (id)=({SENTINEL}) already exists.")
        with (
            pytest.raises(EventlogError) as caught,
            error_translation.translated("sid", committing=committing),
        ):
            raise error
        translated = caught.value
        _assert_eventlog_error(translated)
        assert SENTINEL not in str(translated), cls
        assert translated.session_id == "sid"
        if issubclass(cls, psycopg_pool.PoolTimeout):
            # Waiting for a connection: nothing was sent, whatever the block was doing.
            assert isinstance(translated, StoreUnavailableError)
        elif issubclass(cls, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
            assert isinstance(translated, ConcurrencyError)
        elif issubclass(cls, pg_errors.IntegrityError):
            assert isinstance(translated, CorruptionError)
        elif issubclass(cls, pg_errors.InsufficientPrivilege):
            # 42501: a missing right or a row-level security refusal.
            assert isinstance(translated, AccessDeniedError), cls
        elif issubclass(cls, pg_errors.QueryCanceled | pg_errors.LockNotAvailable):
            # Cancelled by the server, connection intact: nothing landed, even in COMMIT.
            assert isinstance(translated, StatementCancelledError), cls
            assert translated.sqlstate == cls.sqlstate
        elif issubclass(cls, psycopg.OperationalError):
            expected = CommitOutcomeUnknownError if committing else StoreUnavailableError
            assert isinstance(translated, expected), cls
        else:
            assert isinstance(translated, StoreError), cls
        if isinstance(translated, StoreError) and not issubclass(cls, psycopg_pool.PoolTimeout):
            assert translated.code == cls.sqlstate, cls  # the driver's code is kept


def test_only_insufficient_privilege_is_access_denied() -> None:
    # By SQLSTATE, never by text: a 42501 worded like anything is AccessDeniedError,
    # and an error of another code that says "permission denied" is not.
    for cls, expected in (
        (pg_errors.InsufficientPrivilege, True),
        (pg_errors.lookup("42501"), True),
        (pg_errors.UndefinedTable, False),
        (pg_errors.InvalidAuthorizationSpecification, False),
    ):
        with pytest.raises(StoreError) as caught, error_translation.translated("sid"):
            raise cls("permission denied for table entries" if not expected else "x")
        assert isinstance(caught.value, AccessDeniedError) is expected, cls
    error = AccessDeniedError("refused", session_id="s", code="42501")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is AccessDeniedError
    assert (copy.session_id, copy.code, str(copy)) == ("s", "42501", str(error))
    assert isinstance(copy, StoreError)


def test_pool_timeout_becomes_store_unavailable() -> None:
    with pytest.raises(StoreUnavailableError), error_translation.translated():
        raise psycopg_pool.PoolTimeout("couldn't get a connection after 1.00 sec")


def test_a_broken_invariant_is_corruption_without_the_server_detail(
    store: eventlog.Store, schema: str, admin: psycopg.Connection[Any]
) -> None:
    # A row put behind the store's back where its next append goes: the insert
    # trips the primary key, whose DETAIL would show the key's values.
    store.save_delta("s", delta("a"))
    admin.execute(
        f"INSERT INTO {schema}.entries SELECT (jsonb_populate_record(e, "
        "jsonb_build_object('seq', 1, 'entry_id', %s::text))).* "
        f"FROM {schema}.entries e WHERE session_id = 's'",
        (SENTINEL,),
    )
    with pytest.raises(CorruptionError) as caught:
        store.save_delta("s", delta("b"))
    _assert_eventlog_error(caught.value)
    assert "DETAIL" not in str(caught.value)
    assert "Key (" not in str(caught.value)
    assert SENTINEL not in str(caught.value)
    assert caught.value.code == pg_errors.UniqueViolation.sqlstate
    assert "code='23505'" in repr(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).code == "23505"
    loaded = store.load("s")
    assert loaded is not None
