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
def proxy(server_dsn: str) -> Iterator[Proxy]:
    opened = Proxy(server_dsn)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def store(proxy: Proxy, schema: str) -> Iterator[eventlog.Store]:
    opened = PostgresStore.open(
        proxy.conninfo(options=f"-csearch_path={schema}"), min_size=1, max_size=1
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
    with capsys.disabled():
        print(
            f"\nround trips: save_delta of 2 entries {existing} (existing session), "
            f"{new_session} (new session), replayed {replay}; load {load}"
        )
    sent = b"".join(bursts)
    assert b"INSERT" not in sent and b"SELECT" not in sent, "statements should be prepared"
    # The optimistic path: the reads, then one guarded write statement (no
    # BEGIN or COMMIT); a replay finds everything stored and writes nothing.
    assert existing == 2
    assert new_session == 2
    assert replay == 1
