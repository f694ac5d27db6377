"""watch across processes: a writer process appends, a watcher here sees every version, in order.

No time is asserted (tests never do): only order and completeness. The lag
each version took is printed (`-s` shows it); `python -m benchmarks.watch_lag`
measures it at a size worth reporting.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.watch_lag import measure

VERSIONS = 25
INTERVAL_MS = 10.0
ROOT = str(Path(__file__).resolve().parent.parent)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_watcher_sees_every_version_of_a_writer_process_on_sqlite(
    tmp_path: Path, use_async: bool
) -> None:
    url = f"sqlite:///{tmp_path / 'watched.db'}"
    lags = measure(url, "w", VERSIONS, INTERVAL_MS, use_async=use_async, cwd=ROOT)
    assert lags.order == list(range(2, VERSIONS + 2))
    assert sorted(lags.returned) == lags.order
    print(f"\nsqlite {'async' if use_async else 'sync'}: {lags.summary()}")


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_watcher_sees_every_version_of_a_writer_process_on_postgres(
    url: str, use_async: bool
) -> None:
    lags = measure(url, "w", VERSIONS, INTERVAL_MS, use_async=use_async, cwd=ROOT)
    assert lags.order == list(range(2, VERSIONS + 2))
    assert sorted(lags.returned) == lags.order
    print(f"\npostgres {'async' if use_async else 'sync'}: {lags.summary()}")
