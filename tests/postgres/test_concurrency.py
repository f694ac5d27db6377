"""Concurrent writers on Postgres: one session's writes serialize, other sessions don't wait."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from structlog.testing import capture_logs

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.postgres import PostgresStore
from eventlog.testing import run_threads

from .proxy import Proxy, Verdict

THREADS = 8
WRITES = 50
# A hang guard, not a speed test.
NO_HANG_SECONDS = 60


@pytest.fixture
def store(url: str) -> Iterator[eventlog.Store]:
    with eventlog.connect(url, min_size=2, max_size=THREADS + 2) as opened:
        yield opened


def test_concurrent_deltas_on_one_session_all_land_with_gap_free_seq(
    store: eventlog.Store, schema: str, admin: psycopg.Connection[Any]
) -> None:
    def work(worker: int) -> None:
        for n in range(WRITES):
            entry = Entry(id=f"w{worker}-{n}", payload={"worker": worker, "n": n})
            store.save_delta("shared", SessionDelta(new_entries=[entry]))

    assert run_threads(THREADS, work) == []
    loaded = store.load("shared")
    assert loaded is not None
    ids = [entry.id for entry in loaded.entries]
    assert sorted(ids) == sorted(f"w{w}-{n}" for w in range(THREADS) for n in range(WRITES))
    assert loaded.version == THREADS * WRITES
    for worker in range(THREADS):  # each writer's own entries keep its order
        mine = [i for i in ids if i.startswith(f"w{worker}-")]
        assert mine == [f"w{worker}-{n}" for n in range(WRITES)]
    seqs = [
        row[0]
        for row in admin.execute(
            f"SELECT seq FROM {schema}.entries WHERE session_id = 'shared' ORDER BY seq"
        )
    ]
    assert seqs == list(range(THREADS * WRITES))


def test_concurrent_creators_of_one_session_all_succeed(
    store: eventlog.Store, admin: psycopg.Connection[Any], schema: str
) -> None:
    for round_number in range(5):
        sid = f"new-{round_number}"

        def work(worker: int, sid: str = sid) -> None:
            store.save_delta(sid, SessionDelta(new_entries=[Entry(id=f"e{worker}")]))

        assert run_threads(THREADS, work) == []
        loaded = store.load(sid)
        assert loaded is not None
        assert sorted(entry.id for entry in loaded.entries) == [f"e{n}" for n in range(THREADS)]
        assert loaded.version == THREADS


def test_a_locked_session_does_not_block_another(
    store: eventlog.Store, schema: str, admin: psycopg.Connection[Any]
) -> None:
    store.save_delta("busy", SessionDelta(new_entries=[Entry(id="a")]))
    blocker = psycopg.connect(admin.info.dsn)
    try:
        blocker.execute(f"SELECT 1 FROM {schema}.sessions WHERE session_id = 'busy' FOR UPDATE")
        done = threading.Event()

        def write() -> None:
            store.save_delta("free", SessionDelta(new_entries=[Entry(id="b")]))
            store.save_delta("brand-new", SessionDelta(new_entries=[Entry(id="c")]))
            assert store.load("busy") is not None  # reads never wait for a writer
            done.set()

        thread = threading.Thread(target=write)
        thread.start()
        assert done.wait(NO_HANG_SECONDS)
        thread.join()
    finally:
        blocker.rollback()
        blocker.close()


def test_delete_racing_a_write_leaves_no_orphan_rows(
    store: eventlog.Store, schema: str, admin: psycopg.Connection[Any]
) -> None:
    """A delete that waits for an in-flight write must also remove what that write added.

    The in-flight write is played by a raw transaction doing what the store's
    save_delta does: lock the index row, insert, bump the row, commit.
    """
    store.save_delta("doomed", SessionDelta(new_entries=[Entry(id="a")]))
    writer = psycopg.connect(admin.info.dsn)
    writer.execute(f"SELECT 1 FROM {schema}.sessions WHERE session_id = 'doomed' FOR UPDATE")
    writer.execute(
        f"INSERT INTO {schema}.entries SELECT (jsonb_populate_record(e, "
        "jsonb_build_object('seq', 1, 'entry_id', 'b'))).* "
        f"FROM {schema}.entries e WHERE session_id = 'doomed'"
    )
    writer.execute(
        f"UPDATE {schema}.sessions SET next_seq = 2, version = 2 WHERE session_id = 'doomed'"
    )
    deleted: list[bool] = []
    deleter = threading.Thread(target=lambda: deleted.append(store.delete("doomed")))
    deleter.start()
    time.sleep(0.3)  # let the delete reach the locked row
    writer.commit()
    writer.close()
    deleter.join(NO_HANG_SECONDS)
    assert deleted == [True]
    leftover = admin.execute(
        f"SELECT (SELECT count(*) FROM {schema}.entries WHERE session_id = 'doomed') + "
        f"(SELECT count(*) FROM {schema}.session_versions WHERE session_id = 'doomed')"
    ).fetchone()
    assert leftover == (0,)
    assert store.load("doomed") is None
    store.save_delta("doomed", SessionDelta(new_entries=[Entry(id="fresh")]))
    reborn = store.load("doomed")
    assert reborn is not None
    assert [entry.id for entry in reborn.entries] == ["fresh"]


def test_a_write_that_keeps_losing_its_race_takes_the_locking_path(
    server_dsn: str, schema: str, url: str
) -> None:
    # A rival write lands just before each of this store's writes (the proxy
    # holds the write back until the rival committed): the append sent without
    # a read (the store wrote the session last), then three guarded writes.
    rival = eventlog.connect(url)
    proxy = Proxy(server_dsn)
    raced: list[int] = []

    def judge(data: bytes) -> Verdict:
        if b'"mine"' in data and len(raced) < 4:
            rival.save_delta("s", SessionDelta([Entry(f"rival-{len(raced)}", payload={})]))
            raced.append(len(raced))
        return "forward"

    logger = logging.getLogger("eventlog")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        # notify=False: the notifier's own connection would pass the proxy too.
        store = PostgresStore.open(proxy.conninfo(options=f"-csearch_path={schema}"), notify=False)
        try:
            store.save_delta("s", SessionDelta([Entry("first", payload={})]))
            proxy.judge = judge
            with capture_logs() as logs:
                result = store.save_delta(
                    "s", SessionDelta([Entry("mine", payload={"who": "mine"})])
                )
            loaded = store.load("s")
        finally:
            store.close()
    finally:
        logger.setLevel(level)
        proxy.close()
        rival.close()
    assert raced == [0, 1, 2, 3]
    events = [line["event"] for line in logs]
    assert events.count("postgres.unread_append_missed") == 1
    lost = [line["attempt"] for line in logs if line["event"] == "postgres.write_lost_race"]
    assert lost == [1, 2, 3]
    assert result.appended == ("mine",) and result.version == 6
    assert loaded is not None
    assert [entry.id for entry in loaded.entries] == [
        "first",
        "rival-0",
        "rival-1",
        "rival-2",
        "rival-3",
        "mine",
    ]


def test_a_store_that_did_not_write_last_appends_after_what_others_wrote(url: str) -> None:
    # Each store sends an append without reading when it wrote the session
    # last; here another store has always written, deleted or purged since, so
    # each of those writes must find the session changed and read instead.
    first = eventlog.connect(url)
    second = eventlog.connect(url)
    expected: list[str] = []
    try:
        for turn in range(30):
            store = (first, second)[turn % 2]
            entry_id = f"t{turn}"
            result = store.save_delta("s", SessionDelta([Entry(entry_id, payload={"n": turn})]))
            assert result.appended == (entry_id,)
            expected.append(entry_id)
            if turn % 10 == 9:
                removed = expected.pop(0)
                other = (second, first)[turn % 2]
                other.save_delta("s", SessionDelta(removed_entry_ids=[removed]))
                other.purge("s")
        loaded = first.load("s")
        assert loaded is not None
        assert [entry.id for entry in loaded.entries] == expected
        assert loaded.version == 33  # 30 appends and 3 tombstones (purge keeps the version)
        # Delete by one store, append by the other that wrote last: a new session.
        first.save_delta("s", SessionDelta([Entry("last-by-first", payload={})]))
        assert second.delete("s") is True
        result = first.save_delta("s", SessionDelta([Entry("reborn", payload={})]))
        assert result.version == 1 and result.appended == ("reborn",)
        reborn = second.load("s")
        assert reborn is not None and [entry.id for entry in reborn.entries] == ["reborn"]
    finally:
        first.close()
        second.close()


def test_a_replayed_append_does_not_bring_back_a_tombstoned_id(url: str) -> None:
    writer = eventlog.connect(url)
    reader = eventlog.connect(url)
    try:
        delta = SessionDelta([Entry("a", payload={}), Entry("b", "a", payload={})], leaf_id="b")
        writer.save_delta("s", delta)
        writer.save_delta("s", SessionDelta(removed_entry_ids=["a"]))
        # This store wrote last, so the replay goes out without a read: the
        # server must find a's tombstone (and b live) and write nothing.
        again = writer.save_delta("s", delta)
        assert again.appended == () and set(again.skipped) == {"a", "b"}
        loaded = reader.load("s")
        assert loaded is not None and [entry.id for entry in loaded.entries] == ["b"]
        assert loaded.version == 2
    finally:
        writer.close()
        reader.close()
