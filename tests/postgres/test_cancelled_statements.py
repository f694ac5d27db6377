"""A statement the server cancels (statement or lock timeout) says so, and the store keeps working.

The cancelled call wrote nothing and its connection was not lost: it raises
`StatementCancelledError` with the SQLSTATE, never `CommitOutcomeUnknownError`
or `StoreUnavailableError`. Another connection holds a real lock that the call
waits for until the timeout set in the store's URL fires.

On Citus (tests/pgserver.py) a row lock is held on the worker that has the
row, and the call waits there; `lock_timeout` is a setting of the
coordinator's session that Citus does not pass on, so those cases would wait
forever and are skipped. `statement_timeout` cancels on the coordinator, which
cancels the worker's statement, and a table lock is waited for on the
coordinator: those cases run.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pgserver
import psycopg
import pytest

import eventlog
from eventlog import Entry, SessionData, SessionDelta
from eventlog.errors import (
    CommitOutcomeUnknownError,
    StatementCancelledError,
    StoreUnavailableError,
)

from .drivers import Driver, driver

__all__ = ["driver"]  # the fixture

# Long enough that no statement of the store hits it on a busy machine; every
# blocked call waits this long.
TIMEOUT_MS = 400
_SQLSTATE = {"lock_timeout": "55P03", "statement_timeout": "57014"}

# What the other connection locks so that the call waits (in `schema`).
_ROW_OF_S = "SELECT 1 FROM {schema}.sessions WHERE session_id = 's' FOR UPDATE"
_ENTRY_A = "SELECT 1 FROM {schema}.entries WHERE session_id = 's' AND entry_id = 'a' FOR UPDATE"
_ENTRIES = "LOCK TABLE {schema}.entries IN ACCESS EXCLUSIVE MODE"

_CALLS: dict[str, tuple[str, Callable[[Any], object]]] = {
    # the append sent without a read (this store wrote the session last)
    "save_delta": (_ROW_OF_S, lambda store: store.save_delta("s", SessionDelta([Entry("c")]))),
    # the guarded statement of an optimistic write after its reads
    "save": (
        _ROW_OF_S,
        lambda store: store.save(
            "s", SessionData([Entry("a"), Entry("b", "a"), Entry("c", "b")], leaf_id="c")
        ),
    ),
    # a locking write's commit pipeline: stamping the removed entry waits
    "locking save_delta": (
        _ENTRY_A,
        lambda store: store.save_delta(
            "s", SessionDelta([Entry("c")], removed_entry_ids=["a"], leaf_id="b")
        ),
    ),
    # a locking write's first read (the source's index row, FOR UPDATE)
    "fork": (_ROW_OF_S, lambda store: store.fork("s", "t")),
    "delete": (_ROW_OF_S, lambda store: store.delete("s")),
    "load": (_ENTRIES, lambda store: store.load("s")),
    "path": (_ENTRIES, lambda store: store.path("s")),
}


def _with_options(server_dsn: str, options: str) -> str:
    separator = "&" if "?" in server_dsn else "?"
    return f"{server_dsn}{separator}options={quote(options)}"


@pytest.mark.parametrize("setting", sorted(_SQLSTATE))
@pytest.mark.parametrize("call", sorted(_CALLS))
def test_a_cancelled_statement_says_so_writes_nothing_and_the_store_keeps_working(
    driver: Driver,
    server_dsn: str,
    schema: str,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    call: str,
) -> None:
    lock, run = _CALLS[call]
    if pgserver.CITUS_DSN and setting == "lock_timeout" and lock != _ENTRIES:
        pytest.skip("on Citus the row lock is waited for on a worker, which lock_timeout misses")
    if call == "locking save_delta":
        monkeypatch.setattr(driver.module, "_OPTIMISTIC_ATTEMPTS", 0)
    with eventlog.connect(url) as plain:
        timed = _with_options(server_dsn, f"-csearch_path={schema} -c{setting}={TIMEOUT_MS}")
        store = driver.open(timed, min_size=1, max_size=1)
        try:
            store.save_delta("s", SessionDelta([Entry("a"), Entry("b", "a")], leaf_id="b"))
            before = plain.load("s")
            with psycopg.connect(server_dsn) as holder:  # a transaction holding the lock
                holder.execute(lock.format(schema=schema))
                with pytest.raises(StatementCancelledError) as caught:
                    run(store)
                holder.rollback()
            error = caught.value
            assert not isinstance(error, CommitOutcomeUnknownError | StoreUnavailableError)
            assert error.sqlstate == _SQLSTATE[setting]
            assert error.session_id == ("t" if call == "fork" else "s")
            assert "nothing was written" in str(error)
            assert plain.load("s") == before and plain.load("t") is None
            after = plain.load("s")
            assert after is not None and before is not None and after.version == before.version
            # The same store (one connection) goes on working, for this call and others.
            run(store)
            store.save_delta("s2", SessionDelta([Entry("a"), Entry("b", "a")], leaf_id="b"))
            assert [entry.id for entry in store.path("s2")] == ["a", "b"]
            store.fork("s2", "t2")
            assert store.delete("t2") is True
            loaded = store.load("s2")
            assert loaded is not None and loaded.version == 1
        finally:
            store.close()


def test_a_cancelled_statement_error_pickles_with_its_sqlstate() -> None:
    error = StatementCancelledError("cancelled", session_id="s", sqlstate="57014")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is StatementCancelledError
    assert (copy.session_id, copy.sqlstate, str(copy)) == ("s", "57014", str(error))
    assert isinstance(copy, eventlog.StoreError)
