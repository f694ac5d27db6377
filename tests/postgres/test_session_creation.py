"""Creating a session while others write it, and server errors inside a write's pipeline.

Every writer creates a session the same way, so a `fork` racing another creator
ends in `SessionExistsError` (never a broken invariant) and a `save_delta` without
`expected_version` always lands. A server error inside a write's pipeline leaves
the store working: psycopg's prepared-statement cache never disagrees with the
server's afterwards. Each test runs on the sync store and on both async ones.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pgserver
import psycopg
import pytest

import eventlog
from eventlog import Entry, SessionDelta
from eventlog._postgres import driver_async
from eventlog.errors import CorruptionError, SessionExistsError

from .drivers import Driver, driver

__all__ = ["driver"]  # the fixture

# Races of a fork and a save_delta onto one new id (each round a fresh id).
RACE_ROUNDS = 150
NO_HANG_SECONDS = 60


def _hook(
    monkeypatch: pytest.MonkeyPatch, driver: Driver, method: str, action: Callable[..., None]
) -> list[bool]:
    """Run `action(*args)` once after the transaction method `method`, each time it is armed.

    Returns the arming list: append True to fire on the next call.
    """
    armed: list[bool] = []
    for cls in (driver.locking, driver.optimistic):
        if method not in cls.__dict__:
            continue
        original = cls.__dict__[method]
        if driver.module is driver_async:

            async def patched_async(self: Any, *args: Any, _orig: Any = original, **kw: Any) -> Any:
                result = await _orig(self, *args, **kw)
                if armed:
                    armed.pop()
                    action(*args)
                return result

            monkeypatch.setattr(cls, method, patched_async)
        else:

            def patched(self: Any, *args: Any, _orig: Any = original, **kw: Any) -> Any:
                result = _orig(self, *args, **kw)
                if armed:
                    armed.pop()
                    action(*args)
                return result

            monkeypatch.setattr(cls, method, patched)
    return armed


# -- a server error inside a write's pipeline ----------------------------------

_PATHS = ["fork", "optimistic save_delta with removals"]


def _plain_calls_all_work(store: Any, src: str, round_: int) -> None:
    for n in range(8):
        loaded = store.load(src)
        assert loaded is not None
        assert store.path(src)
        assert [item.session_id for item in store.list_sessions(prefix=src).items] == [src]
        assert store.delete(f"never-made-{round_}-{n}") is False
        store.fork(src, f"plain-fork-{round_}-{n}")
        store.purge(src)
        result = store.save_delta(src, SessionDelta([Entry(f"plain-{round_}-{n}", "a")]))
        assert result.appended == (f"plain-{round_}-{n}",)


def _write(store: Any, path: str, src: str, tag: str, n: int) -> None:
    if path == "fork":
        store.fork(src, f"fork-{tag}")
    else:
        # A removal too: the optimistic write is then a pipeline of its own.
        store.save_delta(src, SessionDelta([Entry(f"w{n}", "a")], removed_entry_ids=[f"x{n}"]))


@pytest.mark.parametrize("path", _PATHS)
def test_a_server_error_inside_a_write_pipeline_leaves_the_store_working(
    driver: Driver,
    server_dsn: str,
    url: str,
    schema: str,
    admin: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    # Another writer puts a row where the write's first append goes, between the
    # write's reads and its commit pipeline, and commits it while the pipeline
    # waits for that row: the whole pipeline is sent, then fails on the primary key.
    intruder = psycopg.connect(server_dsn)
    commits: list[threading.Timer] = []

    def intrude(plan: Any) -> None:
        intruder.execute(
            f"INSERT INTO {schema}.entries (session_id, seq, pos, entry_id, kind, payload, "
            "digest, added_in_version) VALUES (%s, %s, 0, 'intruder', 'message', '{}', '', 1)",
            (plan.state.session_id, plan.appends[0].seq),
        )
        commits.append(threading.Timer(0.1, intruder.commit))
        commits[-1].start()

    armed = _hook(monkeypatch, driver, "apply", intrude)
    # psycopg prepares a statement on its 5th use; the cache went wrong only when
    # an aborted pipeline held that use, so each count of good writes is tried.
    for warm in range(8):
        store = driver.open(url, min_size=1, max_size=1)
        try:
            src = f"src-{warm}"
            store.save_delta(
                src,
                SessionDelta(
                    [Entry("a"), Entry("b", "a")] + [Entry(f"x{n}", "a") for n in range(12)],
                    leaf_id="b",
                ),
            )

            for n, failing in enumerate([True] + [False] * warm + [True]):
                if not failing:
                    _write(store, path, src, f"{warm}-{n}", n)
                    continue
                armed.append(True)
                with pytest.raises(CorruptionError):
                    _write(store, path, src, f"{warm}-{n}", n)
                assert not armed
                commits[-1].join()
                admin.execute(f"DELETE FROM {schema}.entries WHERE entry_id = 'intruder'")
            _plain_calls_all_work(store, src, warm)
        finally:
            store.close()
    intruder.close()


# -- a fork racing another creator of its new id -----------------------------------


def _source(store: Any) -> None:
    store.save_delta("src", SessionDelta([Entry("a"), Entry("b", "a")], leaf_id="b"))


def test_fork_onto_an_id_created_during_the_fork_raises_session_exists(
    driver: Driver, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with eventlog.connect(url) as other:
        store = driver.open(url, min_size=1, max_size=1)
        try:
            _source(store)
            for n in range(6):  # the fork's statements prepared: the failure path is warm
                store.fork("src", f"warm-{n}")
            # Another client creates the target after the fork checked it is absent.
            armed = _hook(
                monkeypatch,
                driver,
                "live_records",
                lambda *_args, **_kw: other.save_delta(
                    "x", SessionDelta([Entry("w1")], leaf_id="w1")
                ),
            )
            armed.append(True)
            with pytest.raises(SessionExistsError) as caught:
                store.fork("src", "x")
            assert not armed
            assert caught.value.session_id == "x"
            loaded = store.load("x")
            assert loaded is not None
            assert [entry.id for entry in loaded.entries] == ["w1"]
            assert loaded.parent_session_id is None and loaded.version == 1
            _plain_calls_all_work(store, "src", 0)
        finally:
            store.close()


def _waiting_for_locks(admin: psycopg.Connection[Any], application: str) -> int:
    return len(pgserver.lock_waiting_pids(admin, application))


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + NO_HANG_SECONDS
    while not condition():
        assert time.monotonic() < deadline, "the interleaving never happened"
        time.sleep(0.01)


def test_a_save_delta_that_created_the_id_under_a_fork_lands_and_the_fork_sees_it(
    driver: Driver,
    server_dsn: str,
    schema: str,
    url: str,
    admin: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The interleaving of a deadlock between the two creators, forced: the
    # save_delta has inserted the new index row and waits (on a row a third
    # connection holds where the first entry goes) while the fork sends its
    # commit pipeline; then the third connection lets go.
    application = f"creation-{driver.name}-{schema}"
    named = f"{url}&application_name={application}"
    blocker = psycopg.connect(server_dsn)
    writes: list[threading.Thread] = []
    written: list[str] = []

    def save_delta_in_another_client() -> None:
        try:
            with eventlog.connect(named) as other:
                other.save_delta("x", SessionDelta([Entry("w1")], leaf_id="w1"))
            written.append("ok")
        except BaseException as error:
            written.append(repr(error))

    def start_writer(*_args: Any, **_kw: Any) -> None:
        blocker.execute(
            f"INSERT INTO {schema}.entries (session_id, seq, pos, entry_id, kind, payload, "
            "digest, added_in_version) VALUES ('x', 0, 0, 'blocker', 'message', '{}', '', 1)"
        )
        writes.append(threading.Thread(target=save_delta_in_another_client))
        writes[-1].start()
        _wait_until(lambda: _waiting_for_locks(admin, application) == 1)
        # Once the fork waits too, the blocker's row goes away.
        release = threading.Thread(
            target=lambda: (
                _wait_until(lambda: _waiting_for_locks(admin, application) == 2),
                blocker.rollback(),
            )
        )
        release.start()
        writes.append(release)

    store = driver.open(named, min_size=1, max_size=1)
    try:
        _source(store)
        armed = _hook(monkeypatch, driver, "live_records", start_writer)
        armed.append(True)
        with pytest.raises(SessionExistsError):
            store.fork("src", "x")
        for thread in writes:
            thread.join(NO_HANG_SECONDS)
        assert written == ["ok"]
        loaded = store.load("x")
        assert loaded is not None and [entry.id for entry in loaded.entries] == ["w1"]
        _plain_calls_all_work(store, "src", 0)
    finally:
        store.close()
        blocker.close()


def _race(store: Any, target: str) -> tuple[str, str]:
    """A fork and a save_delta onto the new id `target` at once: what each did."""
    start = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def fork() -> None:
        start.wait()
        try:
            store.fork("src", target)
            outcome["fork"] = "ok"
        except SessionExistsError:
            outcome["fork"] = "exists"
        except BaseException as error:
            outcome["fork"] = repr(error)

    def write() -> None:
        start.wait()
        try:
            store.save_delta(target, SessionDelta([Entry("w1")], leaf_id="w1"))
            outcome["write"] = "ok"
        except BaseException as error:
            outcome["write"] = repr(error)

    threads = [threading.Thread(target=fork), threading.Thread(target=write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(NO_HANG_SECONDS)
    assert not any(thread.is_alive() for thread in threads)
    return outcome["fork"], outcome["write"]


def test_a_fork_and_a_save_delta_racing_onto_one_new_id_never_fail_otherwise(
    driver: Driver, url: str
) -> None:
    store = driver.open(url, min_size=2, max_size=4)
    try:
        _source(store)
        for n in range(RACE_ROUNDS):
            target = f"race-{n}"
            forked, written = _race(store, target)
            # Without expected_version the write must land, whoever came first.
            assert written == "ok", target
            assert forked in ("ok", "exists"), (target, forked)
            loaded = store.load(target)
            assert loaded is not None
            ids = [entry.id for entry in loaded.entries]
            if forked == "ok":  # the write came second and appended to the fork
                assert ids == ["a", "b", "w1"] and loaded.parent_session_id == "src"
            else:
                assert ids == ["w1"] and loaded.parent_session_id is None
        _plain_calls_all_work(store, "src", 0)
    finally:
        store.close()
