"""LangGraph's own checkpointer conformance suite, unchanged, on the eventlog savers.

`langgraph-checkpoint-conformance` (the PyPI package) detects which capabilities a
saver implements and runs its spec tests for each; here every base and extended
capability must be detected and pass, with the sync and the async saver, on
memory, SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.report import CapabilityReport

import eventlog
from eventlog.integrations.langgraph import AsyncEventlogSaver, EventlogSaver

BACKENDS = ["memory", "sqlite", "postgres"]


def _url(backend: str, tmp_path: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'langgraph.db'}"
    import pgserver

    pgserver.dsn_or_skip()
    schema = pgserver.make_schema("langgraph")
    return pgserver.with_search_path(pgserver.server_dsn(), schema)


def _report(url: str, flavour: str) -> CapabilityReport:
    async def sync_saver() -> AsyncGenerator[BaseCheckpointSaver[str], None]:
        store = eventlog.connect(url)
        try:
            yield EventlogSaver(store)
        finally:
            store.close()

    async def async_saver() -> AsyncGenerator[BaseCheckpointSaver[str], None]:
        store = await eventlog.connect_async(url)
        try:
            yield AsyncEventlogSaver(store)
        finally:
            await store.close()

    factory = sync_saver if flavour == "sync" else async_saver
    registered = checkpointer_test(name=f"eventlog-{flavour}")(factory)
    return asyncio.run(validate(registered))


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_conformance_every_capability_passes(backend: str, flavour: str, tmp_path: Path) -> None:
    report = _report(_url(backend, tmp_path), flavour)
    summary = {
        name: (result.detected, result.passed, result.tests_passed, result.tests_failed)
        for name, result in report.results.items()
    }
    failures = [f for result in report.results.values() for f in result.failures]
    assert not failures, failures
    assert set(report.results) == {c.value for c in ALL_CAPABILITIES}
    for name, (detected, passed, tests_passed, _) in summary.items():
        assert detected and passed and tests_passed > 0, (name, summary[name])
