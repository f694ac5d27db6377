"""Store statistics: totals over the session index and the largest sessions, as a library call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import eventlog
from eventlog import Entry, InvalidInputError, SessionDelta, Store
from eventlog.stats import session_info, store_stats


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 's.db'}"
    with eventlog.connect(url) as opened:
        yield opened


def _write(store: Store, session_id: str, *texts: str, removed: tuple[str, ...] = ()) -> None:
    entries = [Entry(f"e{n}", None, "message", None, {"t": text}) for n, text in enumerate(texts)]
    store.save_delta(session_id, SessionDelta(new_entries=entries, removed_entry_ids=list(removed)))


def test_totals_and_the_largest_sessions_first(store: Store) -> None:
    _write(store, "small", "x")
    _write(store, "big", "x" * 500, "y" * 500)
    _write(store, "mid", "z" * 100, "w")
    _write(store, "mid", removed=("e1",))
    infos = {info.session_id: info for info in store.list_sessions().items}
    totals = store_stats(store, top=2)
    assert (totals.sessions, totals.entries, totals.tombstones) == (3, 4, 1)
    assert totals.bytes == sum(info.bytes for info in infos.values())
    assert totals.largest == (infos["big"], infos["mid"])


def test_a_prefix_and_top_zero(store: Store) -> None:
    _write(store, "a-1", "x")
    _write(store, "a-2", "x")
    _write(store, "b-1", "x")
    totals = store_stats(store, prefix="a-", top=0)
    assert (totals.sessions, totals.entries, totals.largest) == (2, 2, ())
    assert store_stats(store, prefix="none").sessions == 0


def test_pages_through_more_sessions_than_one_page(store: Store) -> None:
    for number in range(1005):
        _write(store, f"s{number:04d}", "x")
    totals = store_stats(store, top=3)
    assert (totals.sessions, totals.entries) == (1005, 1005)
    # Equal sizes: the greater id ranks first.
    assert [info.session_id for info in totals.largest] == ["s1004", "s1003", "s1002"]


@pytest.mark.parametrize("top", [-1, True, 1.5, "3"])
def test_a_bad_top_is_refused(store: Store, top: object) -> None:
    with pytest.raises(InvalidInputError, match="top"):
        store_stats(store, top=top)  # type: ignore[arg-type]


def test_session_info_reads_one_index_record(store: Store) -> None:
    _write(store, "demo", "x", "y")
    _write(store, "demo-2", "x")
    info = session_info(store, "demo")
    assert info is not None and (info.session_id, info.entry_count) == ("demo", 2)
    assert session_info(store, "dem") is None
