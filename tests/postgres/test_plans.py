"""The store's statements look a session's ids up in their indexes.

Each statement is EXPLAINed on a connection set up as the pool sets its own,
in a new schema holding one session of 2,000 entries and no statistics yet
(never ANALYZEd: a new database's first busy minutes). A plan that filtered
the session's rows for the ids instead would make save_delta grow with
history.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

import eventlog
from eventlog import Entry, SessionDelta, postgres
from eventlog import _pg_common as sql
from eventlog._pg_guarded import guard_sql, guarded_write
from eventlog.fold import Record, SessionState, WritePlan
from eventlog.model import SaveResult
from eventlog.plan_sql import LIVE_ENTRIES_SQL, plan_statements

NOW = datetime(2026, 1, 1, tzinfo=UTC)
READ = SessionState("s", 3, "a", b"{}", 4, 3, 1, 30, 0, NOW, NOW)
NEW = SessionState("s", 4, "b", b"{}", 6, 4, 2, 40, 0, NOW, NOW)
APPENDS = [
    Record(4, 1, "b", "a", "message", None, b"{}", b"d" * 16, 4, None),
    Record(5, 5, "c", "b", "message", None, b"{}", b"d" * 16, 4, None),
]
UPDATE = WritePlan(NEW, False, True, [1], APPENDS, True, SaveResult(4))
CREATE = WritePlan(NEW, True, True, [], APPENDS, False, SaveResult(1))
IDS = {"sid": "s", "ids": ["a", "b"]}

STATEMENTS: dict[str, tuple[str, Sequence[Any] | Mapping[str, Any]]] = {
    "state": (sql.STATE_SQL, ("s",)),
    "state for update": (sql.STATE_FOR_UPDATE_SQL, ("s",)),
    "state and latest": (sql.STATE_AND_LATEST_SQL, IDS),
    "latest": (sql.LATEST_SQL, IDS),
    "live entries": (LIVE_ENTRIES_SQL, ("s",)),
    "live digests": (sql.LIVE_DIGESTS_SQL, ("s",)),
    "records at": (sql.RECORDS_AT_SQL, ("s", 2, 2)),
    "version row": (sql.VERSION_ROW_SQL, ("s", 2)),
    "guarded update": guarded_write(UPDATE, READ),
    "guarded create": guarded_write(CREATE, None),
    "guard": guard_sql("s", READ),
    **{
        f"locking write {n}": (statement, rows[0])
        for n, (statement, rows) in enumerate(plan_statements(UPDATE, paramstyle="%s", time=str))
    },
}


@pytest.fixture(params=[None, 4], ids=["plain", "partitioned"])
def configured(
    request: pytest.FixtureRequest, url: str
) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A connection to a new schema holding one long session, set up as the pool's are."""
    postgres.migrate(url, partitions=request.param)
    with eventlog.connect(url) as store:
        for batch in range(4):
            entries = [Entry(f"h{batch}-{n}", payload={"n": n}) for n in range(500)]
            store.save_delta("s", SessionDelta(entries))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.CONFIGURE_SQL)
        yield conn


def plan(conn: psycopg.Connection[tuple[Any, ...]], name: str) -> str:
    query, params = STATEMENTS[name]
    rows = conn.execute(f"EXPLAIN {query}", params).fetchall()
    return "\n".join(str(row[0]) for row in rows)


def test_the_pool_plans_each_call_with_its_parameters(
    configured: psycopg.Connection[tuple[Any, ...]],
) -> None:
    settings = {
        name: configured.execute(f"SHOW {name}").fetchone() for name in sql.CONNECTION_SETTINGS
    }
    assert settings == {name: (value,) for name, value in sql.CONNECTION_SETTINGS.items()}


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_plans_look_ids_up_in_an_index(
    configured: psycopg.Connection[tuple[Any, ...]], name: str
) -> None:
    explained = plan(configured, name)
    assert "Seq Scan" not in explained, explained
    # Ids and seqs are looked up in an index, never filtered out of a session's rows.
    filters = [line for line in explained.splitlines() if "Filter:" in line]
    assert not any("entry_id" in line or "seq" in line for line in filters), explained
