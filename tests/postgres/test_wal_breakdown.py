"""The WAL breakdown tool runs, and shows the optimistic write's shape: one commit
per turn and no row lock (the floor's upsert locks its index row)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from benchmarks.wal_breakdown import breakdown, has_walinspect, render


def test_wal_breakdown_of_a_few_turns(server_dsn: str, admin: psycopg.Connection[Any]) -> None:
    if not has_walinspect(admin):  # the server lacks contrib, or we are not superuser
        pytest.skip("pg_walinspect is not available")
    found = breakdown(server_dsn, entries=10, turns=4)
    assert set(found) == {"floor", "eventlog"}
    kinds = {name: {line.record_type: line for line in lines} for name, lines in found.items()}
    assert kinds["eventlog"]["Transaction/COMMIT"].records >= 1
    assert "Heap/LOCK" not in kinds["eventlog"]
    assert "Heap/LOCK" in kinds["floor"]
    assert all(line.total > 0 for lines in found.values() for line in lines)
    assert "WAL bytes per turn" in render(found)
