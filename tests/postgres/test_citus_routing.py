"""On Citus, each operation on one session runs on that session's shards only, without
two-phase commit: read from Citus's own evidence.

With `citus.log_remote_commands` on, the coordinator reports every command it
sends to a worker as a notice: the command (naming the shard tables it reads or
writes) and the worker it went to. The store's one pooled connection collects
them, and each operation's commands must name only the shards that hold its
session, on one worker, with no PREPARE TRANSACTION. A statement that fans out
(a correlated subquery that does not name the session) or a write that Citus
splits into steps (a data-modifying CTE that inserts) names other shards or
prepares on two workers. `list_sessions` is the one statement that fans out,
and a `fork` writes two sessions: checked as such.

The hot writes (`save_delta`, `save`) are one call of the distributed write
function, which the coordinator forwards to the worker holding the session
(`eventlog/_postgres/citus.py`): the commands show that call, alone, on that
worker, and nothing else that writes.

Runs only on a Citus cluster (`EVENTLOG_TEST_CITUS`, see tests/pgserver.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import app_roles
import pgserver
import psycopg
import pytest

from eventlog import ConcurrencyError, Entry, SessionData, SessionDelta
from eventlog._postgres.citus import WRITE_FUNCTION
from eventlog.postgres import PostgresStore

pytestmark = pytest.mark.postgres

_SHARD = re.compile(r"\b(sessions|entries|session_versions)_(\d+)\b")
_WORKER = re.compile(r"on server (\S+)")
# Runs of each operation: more than psycopg's prepare threshold (5), so the
# prepared statements' plans are checked too.
_RUNS = 7


@dataclass
class _Remote:
    """The commands the coordinator sent to workers during one operation."""

    commands: list[tuple[str, str]] = field(default_factory=list)  # (command, worker)

    def shards(self) -> set[int]:
        return {int(match[1]) for command, _ in self.commands for match in _SHARD.findall(command)}

    def workers(self) -> set[str]:
        return {worker for _, worker in self.commands}

    def prepared(self) -> list[str]:
        return [command for command, _ in self.commands if "PREPARE" in command]

    def calls(self) -> list[tuple[str, str]]:
        """The calls of the write function, with the worker each went to."""
        return [(c, worker) for c, worker in self.commands if f".{WRITE_FUNCTION}(" in c]

    def other_writes(self) -> list[str]:
        """Commands, besides the write function's calls, that write rows."""
        return [
            command
            for command, _ in self.commands
            if f".{WRITE_FUNCTION}(" not in command
            and re.search(r"\b(INSERT|UPDATE|DELETE)\b", command)
        ]


@dataclass
class _Cluster:
    store: PostgresStore
    admin: psycopg.Connection[tuple[Any, ...]]
    schema: str
    seen: _Remote

    def shards_of(self, *session_ids: str) -> set[int]:
        """The shard ids holding the sessions' rows, in all three tables."""
        shards = set()
        for sid in session_ids:
            for table in ("sessions", "entries", "session_versions"):
                row = self.admin.execute(
                    "SELECT get_shard_id_for_distribution_column(%s, %s::text)",
                    (f"{self.schema}.{table}", sid),
                ).fetchone()
                assert row is not None
                shards.add(int(row[0]))
        return shards

    def worker_of(self, session_id: str) -> str:
        """The worker (host:port) holding the session's shard of `sessions`."""
        row = self.admin.execute(
            "SELECT nodename || ':' || nodeport FROM pg_dist_shard_placement "
            "WHERE shardid = get_shard_id_for_distribution_column(%s, %s::text)",
            (f"{self.schema}.sessions", session_id),
        ).fetchone()
        assert row is not None
        return str(row[0])

    def remote(self, call: Callable[..., object], *args: Any) -> _Remote:
        """The commands sent to workers while `call(*args)` runs."""
        self.seen.commands.clear()
        call(*args)
        return _Remote(list(self.seen.commands))


def _collecting_store(url: str, seen: _Remote, **options: Any) -> PostgresStore:
    """A store of one pooled connection whose workers' commands land in `seen`."""
    store = PostgresStore.open(url, min_size=1, max_size=1, **options)

    def collect(notice: psycopg.errors.Diagnostic) -> None:
        message = notice.message_primary or ""
        if message.startswith("issuing "):
            worker = _WORKER.search(notice.message_detail or "")
            seen.commands.append((message, worker[1] if worker else "?"))

    # Every connection of the pool collects: the one open now, and any that
    # replaces it (a write that lost its race closes its connection).
    pool = store._pool  # type: ignore[attr-defined]
    configure = pool._configure

    def configure_and_collect(conn: psycopg.Connection[Any]) -> None:
        configure(conn)
        conn.add_notice_handler(collect)

    pool._configure = configure_and_collect
    with pool.connection() as conn:
        conn.add_notice_handler(collect)
    return store


@pytest.fixture
def cluster() -> Iterator[_Cluster]:
    dsn = pgserver.citus_or_skip()
    schema = pgserver.make_schema("routing")
    options = quote(f"-csearch_path={schema} -ccitus.log_remote_commands=on")
    seen = _Remote()
    store = _collecting_store(f"{dsn}?options={options}", seen)
    try:
        with psycopg.connect(dsn, autocommit=True) as admin:
            yield _Cluster(store, admin, schema, seen)
    finally:
        store.close()


def _turn(n: int) -> SessionDelta:
    return SessionDelta(
        [
            Entry(f"u{n}", f"a{n - 1}" if n else None, payload={"text": f"hi {n}"}),
            Entry(f"a{n}", f"u{n}", payload={"text": f"hello {n}"}),
        ],
        leaf_id=f"a{n}",
    )


def _assert_single_shard(cluster: _Cluster, name: str, remote: _Remote, sid: str) -> None:
    assert remote.commands, f"{name}: no command reached a worker (tables not distributed?)"
    assert remote.shards() <= cluster.shards_of(sid), f"{name}: {remote.commands}"
    assert len(remote.workers()) == 1, f"{name} ran on {remote.workers()}"
    assert not remote.prepared(), f"{name} used two-phase commit: {remote.prepared()}"


def test_each_operation_on_one_session_is_single_shard_without_2pc(cluster: _Cluster) -> None:
    store = cluster.store
    operations: list[tuple[str, str, Callable[[int], object]]] = [
        ("save_delta, a new session", "new-{n}", lambda n: store.save_delta(f"new-{n}", _turn(0))),
        ("save_delta, an append", "s", lambda n: store.save_delta("s", _turn(n))),
        ("save_delta, a replay", "s", lambda n: store.save_delta("s", _turn(n))),
        (
            "save_delta, read first",
            "s",
            lambda n: (store._known.clear(), store.save_delta("s", _turn(100 + n))),  # type: ignore[attr-defined]
        ),
        (
            "save_delta with removals",
            "s",
            lambda n: store.save_delta(
                "s", SessionDelta([Entry(f"x{n}", payload={})], [f"u{n}"], leaf_id=f"x{n}")
            ),
        ),
        (
            "save, a snapshot",
            "snap",
            lambda n: store.save(
                "snap",
                SessionData([Entry(f"e{i}", payload={"i": i}) for i in range(n + 1)], f"e{n}"),
            ),
        ),
        ("load", "s", lambda n: store.load("s")),
        ("load(at_version=)", "s", lambda n: store.load("s", at_version=n + 1)),
        ("info", "s", lambda n: store.info("s")),
        ("entry", "s", lambda n: store.entry("s", "a1")),
        ("path", "s", lambda n: store.path("s")),
        ("path(limit=)", "s", lambda n: store.path("s", limit=2)),
        ("scan", "s", lambda n: store.scan("s", id_prefix="a")),
        ("changes", "s", lambda n: store.changes("s", after_version=n)),
        ("purge", "snap", lambda n: store.purge("snap")),
        ("delete", "new-{n}", lambda n: store.delete(f"new-{n}")),
    ]
    for name, sid, call in operations:
        for n in range(1, _RUNS + 1):
            remote = cluster.remote(call, n)
            _assert_single_shard(cluster, f"{name} #{n}", remote, sid.format(n=n))


def test_a_stale_write_is_refused_on_its_shard(cluster: _Cluster) -> None:
    store = cluster.store
    store.save_delta("stale", _turn(0))
    for n in range(1, _RUNS + 1):
        store.save_delta("stale", _turn(n))

        def stale(n: int) -> None:
            with pytest.raises(ConcurrencyError):
                store.save_delta("stale", _turn(50 + n), expected_version=1)

        _assert_single_shard(cluster, f"stale write #{n}", cluster.remote(stale, n), "stale")
    assert store.info("stale").version == _RUNS + 1  # type: ignore[union-attr]


def test_fork_touches_only_its_two_sessions_and_list_sessions_fans_out(cluster: _Cluster) -> None:
    store = cluster.store
    store.save_delta("source", _turn(0))
    for n in range(_RUNS):
        remote = cluster.remote(store.fork, "source", f"copy-{n}")
        assert remote.shards() <= cluster.shards_of("source", f"copy-{n}"), remote.commands
    listing = cluster.remote(store.list_sessions)
    assert len(listing.shards()) > 1, "list_sessions reads every shard of sessions"
    assert not listing.prepared()


def _assert_one_delegated_call(cluster: _Cluster, name: str, remote: _Remote, sid: str) -> None:
    calls = remote.calls()
    assert len(calls) == 1, f"{name}: {len(calls)} calls of the write function: {remote.commands}"
    command, worker = calls[0]
    assert command == remote.commands[-1][0], f"{name}: the call is not the last command"
    assert worker.rpartition("@")[2] == cluster.worker_of(sid), f"{name} ran on {worker}"
    assert not remote.other_writes(), f"{name} wrote outside the call: {remote.other_writes()}"
    assert not remote.prepared(), f"{name} used two-phase commit: {remote.prepared()}"


def test_each_hot_write_is_one_call_delegated_to_the_sessions_worker(cluster: _Cluster) -> None:
    store = cluster.store
    writes: list[tuple[str, str, int, Callable[[int], object]]] = [
        # (name, session, commands expected: the reads, then the call)
        ("save_delta, a new session", "d-{n}", 2, lambda n: store.save_delta(f"d-{n}", _turn(0))),
        ("save_delta, an append sent unread", "d", 1, lambda n: store.save_delta("d", _turn(n))),
        (
            "save_delta, read first",
            "d",
            2,
            lambda n: (store._known.clear(), store.save_delta("d", _turn(100 + n))),  # type: ignore[attr-defined]
        ),
        (
            "save_delta with removals",
            "d",
            2,
            lambda n: store.save_delta(
                "d", SessionDelta([Entry(f"y{n}", payload={})], [f"u{n}"], leaf_id=f"y{n}")
            ),
        ),
    ]
    store.save_delta("d", _turn(0))
    for name, sid, expected, call in writes:
        for n in range(1, _RUNS + 1):
            remote = cluster.remote(call, n)
            assert len(remote.commands) == expected, f"{name} #{n}: {remote.commands}"
            _assert_one_delegated_call(cluster, f"{name} #{n}", remote, sid.format(n=n))
    for n in range(1, _RUNS + 1):
        snapshot = SessionData([Entry(f"e{i}", payload={"i": i}) for i in range(n + 1)], f"e{n}")
        remote = cluster.remote(store.save, "snap-d", snapshot)
        _assert_one_delegated_call(cluster, f"save #{n}", remote, "snap-d")
        assert store.load("snap-d") == snapshot
    # A replay of the last delta writes nothing: its reads only.
    info = store.info("d")
    last = SessionDelta([Entry(f"y{_RUNS}", payload={})], [f"u{_RUNS}"], leaf_id=f"y{_RUNS}")
    remote = cluster.remote(store.save_delta, "d", last)
    assert not remote.calls() and not remote.other_writes(), remote.commands
    assert store.info("d") == info


def test_a_lost_race_in_the_call_writes_nothing_and_plans_again(cluster: _Cluster) -> None:
    store = cluster.store
    store.save_delta("race", _turn(0))
    # Another writer moves the session on behind the store's back: the store's
    # known index row is stale, so its unread append's call finds the session
    # changed, writes nothing, and the store reads and plans again.
    url = pgserver.with_search_path(pgserver.server_dsn(), cluster.schema)
    with PostgresStore.open(url) as other:
        other.save_delta("race", _turn(1))
    remote = cluster.remote(store.save_delta, "race", _turn(2))
    calls = remote.calls()
    assert len(calls) == 2, remote.commands  # the stale call, then the one after the read
    loaded = store.load("race")
    assert loaded is not None and loaded.version == 3
    assert [entry.id for entry in loaded.entries] == ["u0", "a0", "u1", "a1", "u2", "a2"]


def test_a_tenants_writes_under_row_level_security_are_delegated(cluster: _Cluster) -> None:
    # The app role is subject to the policies, which run on the worker: the
    # call sets the tenant there itself. Were it not set, the guard would find
    # no row and every call would lose its race (then the locking path writes).
    role = app_roles.make_app_role(cluster.schema, "routing")
    base = app_roles.role_url(role, cluster.schema)
    seen = _Remote()
    url = base.replace("options=", "options=" + quote("-ccitus.log_remote_commands=on "))
    with _collecting_store(url, seen, tenant="acme") as store:
        store.save_delta("t", _turn(0))
        for n in range(1, _RUNS + 1):
            seen.commands.clear()
            store.save_delta("t", _turn(n))
            remote = _Remote(list(seen.commands))
            assert len(remote.commands) == 1, remote.commands
            _assert_one_delegated_call(cluster, f"tenant append #{n}", remote, "t")
        loaded = store.load("t")
        assert loaded is not None and loaded.version == _RUNS + 1
    with PostgresStore.open(base, migrate=False) as default_tenant:
        assert default_tenant.load("t") is None
    rows = cluster.admin.execute(
        f"SELECT DISTINCT tenant FROM {cluster.schema}.entries WHERE session_id = 't'"
    ).fetchall()
    assert rows == [("acme",)]
