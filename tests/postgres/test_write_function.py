"""The write function Citus delegates (`eventlog/_postgres/citus.py`), on any PostgreSQL.

On distributed tables the store sends each optimistic write as one call of
`eventlog_write`, which the coordinator forwards to the session's worker. The
function is plain PL/pgSQL, so these tests create it in a schema of their own
and point the store at it on whatever server the suite uses (plain PostgreSQL
in CI, where Citus is absent; the coordinator in Citus mode, where
`distribute` made it): the same promises hold through it as through the
guarded statement. That it is delegated, and to which worker, is
`test_citus_routing.py`'s part.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import app_roles
import psycopg
import pytest

from eventlog import ConcurrencyError, Entry, SessionData, SessionDelta
from eventlog._postgres import driver
from eventlog._postgres.citus import create_write_function_sql
from eventlog.errors import CorruptionError
from eventlog.postgres import PostgresStore

pytestmark = pytest.mark.postgres


def _open(url: str, **options: Any) -> PostgresStore:
    """A store whose optimistic writes call the write function."""
    store = PostgresStore.open(url, **options)
    store._delegated = True  # type: ignore[attr-defined]
    return store


@pytest.fixture
def function_url(schema: str, url: str) -> str:
    """The test's schema, migrated, with the write function in it."""
    PostgresStore.open(url, min_size=1, max_size=1).close()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(create_write_function_sql())
    return url


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """What each call of the write function returned (1: it wrote; 0: it did not)."""
    seen: list[bool] = []
    call = driver._delegated

    def counted(conn: psycopg.Connection[Any], query: str, params: dict[str, Any]) -> bool:
        landed = call(conn, query, params)
        seen.append(landed)
        return landed

    monkeypatch.setattr(driver, "_delegated", counted)
    yield seen


def _turn(n: int) -> SessionDelta:
    return SessionDelta(
        [
            Entry(f"u{n}", f"a{n - 1}" if n else None, payload={"n": n}),
            Entry(f"a{n}", f"u{n}", payload={"n": n, "text": "hello\x00"}),
        ],
        leaf_id=f"a{n}",
    )


def test_turns_replays_removals_and_snapshots_go_through_the_function(
    function_url: str, calls: list[bool]
) -> None:
    with _open(function_url) as store:
        for n in range(4):
            assert store.save_delta("s", _turn(n)).version == n + 1
        assert calls == [True] * 4
        replay = store.save_delta("s", _turn(3))
        assert replay.skipped == ("u3", "a3") and replay.version == 4
        # Sent unread, the call finds the ids stored and writes nothing; read
        # first, the replay changes nothing, so no second call.
        assert calls[4:] == [False]
        removal = SessionDelta([Entry("x", "a3", payload={})], ["u3", "a3"], leaf_id="x")
        assert store.save_delta("s", removal).tombstoned == ("u3", "a3")
        loaded = store.load("s")
        assert loaded is not None and loaded.version == 5
        assert [entry.id for entry in loaded.entries] == ["u0", "a0", "u1", "a1", "u2", "a2", "x"]
        assert loaded.entries[1].payload == {"n": 0, "text": "hello\x00"}
        snapshot = SessionData([Entry("a"), Entry("b", "a")], leaf_id="b", metadata={"m": 1})
        store.save("snap", snapshot)
        store.save("snap", SessionData([Entry("b")], leaf_id="b", metadata={"m": 2}))
        again = store.load("snap")
        assert again is not None and again.metadata == {"m": 2}
        assert [entry.id for entry in again.entries] == ["b"]
        assert store.load("s", at_version=2) is not None
        assert calls.count(False) == 1


def test_a_stale_call_writes_nothing_and_the_store_plans_again(
    function_url: str, calls: list[bool]
) -> None:
    with _open(function_url) as store, _open(function_url) as other:
        store.save_delta("s", _turn(0))
        other.save_delta("s", _turn(1))  # behind the store's back: its known row is stale
        assert store.save_delta("s", _turn(2)).version == 3
        assert calls == [True, True, False, True]
        loaded = store.load("s")
        assert loaded is not None
        assert [entry.id for entry in loaded.entries] == ["u0", "a0", "u1", "a1", "u2", "a2"]
        with pytest.raises(ConcurrencyError):
            store.save_delta("s", _turn(3), expected_version=2)


def test_an_unread_append_of_a_removed_id_does_not_revive_it(
    function_url: str, calls: list[bool]
) -> None:
    with _open(function_url) as store:
        store.save_delta("s", SessionDelta([Entry("a"), Entry("b", "a")], leaf_id="b"))
        store.save_delta("s", SessionDelta([], ["a"], leaf_id="b"))
        # Sent without reading (the store wrote the session last): the call finds
        # that "a" has a record and writes nothing; read first, "a" is skipped.
        result = store.save_delta("s", SessionDelta([Entry("a"), Entry("c", "b")], leaf_id="c"))
        assert calls[-2:] == [False, True]
        assert result.skipped == ("a",) and result.appended == ("c",)
        loaded = store.load("s")
        assert loaded is not None and [entry.id for entry in loaded.entries] == ["b", "c"]


def test_a_broken_invariant_in_the_function_is_corruption_and_writes_nothing(
    function_url: str, schema: str, admin: psycopg.Connection[Any]
) -> None:
    with _open(function_url) as store:
        store.save_delta("s", SessionDelta([Entry("a")]))
        # A row put behind the store's back where its next append goes: the
        # function's insert trips the primary key.
        admin.execute(
            f"INSERT INTO {schema}.entries SELECT (jsonb_populate_record(e, "
            "jsonb_build_object('seq', 1, 'entry_id', 'planted'))).* "
            f"FROM {schema}.entries e WHERE session_id = 's'"
        )
        with pytest.raises(CorruptionError) as caught:
            store.save_delta("s", SessionDelta([Entry("b")]))
        assert caught.value.code == "23505"
        info = store.info("s")
        assert info is not None and info.version == 1


def test_a_tenants_calls_pass_row_level_security_and_stay_its_own(
    function_url: str, schema: str, admin: psycopg.Connection[Any], calls: list[bool]
) -> None:
    role_url = app_roles.role_url(app_roles.make_app_role(schema, "write_function"), schema)
    with _open(role_url, tenant="acme") as acme, _open(role_url, tenant="other") as other:
        for n in range(3):
            acme.save_delta("s", _turn(n))
        other.save_delta("s", _turn(0))
        assert calls == [True] * 4  # none lost its race to a policy that hid the row
        mine = acme.load("s")
        theirs = other.load("s")
        assert mine is not None and mine.version == 3 and len(mine.entries) == 6
        assert theirs is not None and theirs.version == 1 and len(theirs.entries) == 2
    with PostgresStore.open(role_url, migrate=False) as default_tenant:
        assert default_tenant.load("s") is None
    rows = admin.execute(
        f"SELECT tenant, count(*) FROM {schema}.entries GROUP BY tenant ORDER BY tenant"
    ).fetchall()
    assert rows == [("acme", 6), ("other", 2)]
