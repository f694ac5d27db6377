"""`benchmarks/adk.py` produces every figure (tiny sizes, eventlog's side only)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("google.adk")

import eventlog
from benchmarks.adk import measure
from eventlog.integrations.adk import EventlogSessionService


def test_measure_gives_every_figure(tmp_path: Path) -> None:
    async def main() -> dict[str, float]:
        store = await eventlog.connect_async(f"sqlite:///{tmp_path / 'bench.db'}")
        try:
            return await measure(EventlogSessionService(store), events=30, sessions=5, repeats=2)
        finally:
            await store.close()

    figures = asyncio.run(main())
    assert set(figures) == {
        "append@10",
        "append@30",
        "get_full",
        "get_recent20",
        "list_one_user@2",
        "list_one_user@5",
    }
    assert all(value > 0 for value in figures.values())
