"""The benchmark harness runs end to end at tiny sizes, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.contenders import CONTENDERS, sqlite_targets
from benchmarks.harness import Progress, Settings, run_backend, sqlite_storage
from benchmarks.peers import PEERS
from benchmarks.report import checks, table

TINY = Settings(sizes=(4, 20), turns=2, loads=1, threads=2, thread_turns=2, big_load=20)


def test_harness_produces_every_figure_on_sqlite(tmp_path: Path) -> None:
    steps: list[str] = []
    settings = TINY
    figures = run_backend(
        sqlite_targets(tmp_path),
        settings,
        Progress(steps.append),
        storage_bytes=sqlite_storage(tmp_path),
    )
    assert set(figures["per_turn"]) == {"eventlog", "blob", "floor"}
    assert figures["per_turn"]["eventlog"]["20"]["n"] == 2
    assert figures["tombstoned_load"]["live"] == 20
    assert all(value > 0 for value in figures["storage_bytes_per_entry"].values())
    assert len(checks(figures)) == 8  # no WAL figure on SQLite; 20 is both mid and big
    assert all(cell["encode_ms"] > 0 for cell in figures["snapshot_save"].values())
    text = table("sqlite", figures)
    assert "targets:" in text
    for name in figures["peers_not_installed"]:
        assert f"peer {name}: not installed" in text
    assert len(steps) == 7 * len(settings.sizes) + 4
    assert figures["throughput_turns_per_s"]["eventlog_async"] > 0


def test_peers_are_measured_beside_eventlog_on_sqlite(tmp_path: Path) -> None:
    for peer_class in PEERS:
        for module in peer_class.requires:
            pytest.importorskip(module)
    peers = [peer_class.name for peer_class in PEERS]
    steps: list[str] = []
    figures = run_backend(
        sqlite_targets(tmp_path, (*CONTENDERS, *peers)),
        TINY,
        Progress(steps.append),
        storage_bytes=sqlite_storage(tmp_path),
    )
    assert set(figures["per_turn"]) == {*CONTENDERS, *peers}
    for peer in peers:
        assert figures["per_turn"][peer]["20"]["n"] == 2
        assert figures["load"][peer]["20"]["median_ms"] > 0
    assert set(figures["peers"]) == set(peers)
    assert figures["peers_not_installed"] == {}
    found = checks(figures)
    assert len(found) == 8 + len(peers)
    assert [check.name for check in found[8:]] == [
        f"eventlog per turn / {peer} per turn at 20 entries" for peer in peers
    ]
    text = table("sqlite", figures)
    assert all(f"peer {peer}: " in text for peer in peers)
    assert len(steps) == (7 + 2 * len(peers)) * len(TINY.sizes) + 4
