"""How many network round trips one call costs, counted on the wire by a proxy.

Run with ``-s`` to see the numbers. The bounds are structural (round trips,
not time): a save_delta of a few entries must stay a small constant, and in
steady state the statements are prepared, so no SQL text crosses the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.postgres import PostgresStore

from .proxy import Proxy

WARM_UP = 10  # more than psycopg's prepare_threshold (5)


@pytest.fixture
def store(proxy: Proxy, schema: str) -> Iterator[eventlog.Store]:
    # A landed write's notification goes from the store's own notification
    # connection, after the call returned (`_postgres.notifier`): not one of the
    # call's round trips, and through this proxy it would be counted as one.
    opened = PostgresStore.open(
        proxy.conninfo(options=f"-csearch_path={schema}"), min_size=1, max_size=1, notify=False
    )
    try:
        yield opened
    finally:
        opened.close()


def _two(prefix: str) -> SessionDelta:
    return SessionDelta(
        new_entries=[
            Entry(id=f"{prefix}-1", payload={"role": "user", "text": "hi"}),
            Entry(id=f"{prefix}-2", parent_id=f"{prefix}-1", payload={"role": "assistant"}),
        ],
        leaf_id=f"{prefix}-2",
    )


def _measure(proxy: Proxy, call: Callable[[], object]) -> tuple[int, list[bytes]]:
    bursts: list[bytes] = []

    def record(data: bytes) -> str:
        bursts.append(data)
        return "forward"

    proxy.judge = record  # type: ignore[assignment]
    before = proxy.round_trips
    call()
    proxy.judge = lambda data: "forward"
    return proxy.round_trips - before, bursts


def test_round_trips_per_call(
    proxy: Proxy, store: eventlog.Store, capsys: pytest.CaptureFixture[str]
) -> None:
    for n in range(WARM_UP):
        store.save_delta("warm", _two(f"w{n}"))
        store.save_delta(f"warm-new-{n}", _two("x"))
        store.load("warm")

    existing, bursts = _measure(proxy, lambda: store.save_delta("warm", _two("m")))
    new_session, _ = _measure(proxy, lambda: store.save_delta("brand-new", _two("n")))
    load, _ = _measure(proxy, lambda: store.load("warm"))
    replay, _ = _measure(proxy, lambda: store.save_delta("warm", _two("m")))
    store._known.clear()  # type: ignore[attr-defined]  # as if another process wrote last
    unknown, _ = _measure(proxy, lambda: store.save_delta("warm", _two("u")))
    with capsys.disabled():
        print(
            f"\nround trips: save_delta of 2 entries {existing} (this store wrote the "
            f"session last), {unknown} (another did), {new_session} (new session), "
            f"replayed {replay}; load {load}"
        )
    sent = b"".join(bursts)
    assert b"INSERT" not in sent and b"SELECT" not in sent, "statements should be prepared"
    # A session this store wrote last: one guarded write, planned on the index
    # row it wrote (no read, no BEGIN or COMMIT). Otherwise the optimistic
    # path: the reads, then the guarded write. A replay's unread write finds
    # the ids stored and writes nothing; the reads then find them skipped.
    assert existing == 1
    assert unknown == 2
    assert new_session == 2
    assert replay == 2


def test_round_trips_of_the_framework_reads(
    proxy: Proxy, store: eventlog.Store, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [f"e{i:03d}" for i in range(100)]
    parents = [None, *ids[:-1]]
    entries = [
        Entry(id=i, parent_id=p, payload={"n": i}) for i, p in zip(ids, parents, strict=True)
    ]
    store.save_delta("reads", SessionDelta(new_entries=entries, leaf_id=ids[-1]))
    for _ in range(WARM_UP):
        store.info("reads")
        store.entry("reads", "e050")
        store.path("reads", limit=20)
        store.scan("reads", id_prefix="e01")
        store.changes("reads", after_version=0, limit=1)

    info, _ = _measure(proxy, lambda: store.info("reads"))
    entry, _ = _measure(proxy, lambda: store.entry("reads", "e050"))
    tail, _ = _measure(proxy, lambda: store.path("reads", limit=20))
    scan, bursts = _measure(proxy, lambda: store.scan("reads", id_prefix="e01"))
    changes, _ = _measure(proxy, lambda: store.changes("reads", after_version=0, limit=1))
    with capsys.disabled():
        print(
            f"\nround trips: info {info}, entry {entry}, path(limit=20) {tail}, scan {scan}, "
            f"changes {changes}"
        )
    assert b"SELECT" not in b"".join(bursts), "statements should be prepared"
    # Each is one statement, run without BEGIN or COMMIT.
    assert (info, entry, tail, scan) == (1, 1, 1, 1)
    # BEGIN, the index row, the three reads of the log pipelined, COMMIT: 4; the
    # pipeline's three answers may reach the proxy as two bursts.
    assert changes <= 5
