"""Observability: one debug line per operation, never payloads, nothing when debug is off."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

import eventlog
from eventlog import Entry, SessionDelta

SENTINEL = "sentinel-7c1d-private-text"


@pytest.fixture
def eventlog_debug() -> Iterator[None]:
    logger = logging.getLogger("eventlog")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.setLevel(level)


def _delta() -> SessionDelta:
    return SessionDelta(
        [
            Entry("a", None, "message", None, {"text": SENTINEL}),
            Entry("b", "a", "message", None, {"text": SENTINEL}),
        ],
        leaf_id="b",
        metadata={"title": SENTINEL},
    )


@pytest.mark.usefixtures("eventlog_debug")
def test_each_operation_logs_one_debug_line_with_ids_counts_and_timing() -> None:
    with capture_logs() as logs, eventlog.connect("memory://") as store:
        store.save_delta("s1", _delta())
        store.load("s1")
        store.path("s1")
    assert [line["event"] for line in logs] == ["save_delta", "load", "path"]
    first = logs[0]
    assert first["log_level"] == "debug"
    assert first["session_id"] == "s1" and first["entries"] == 2 and first["version"] == 1
    assert isinstance(first["duration_ms"], float)
    assert SENTINEL not in repr(logs)


@pytest.mark.usefixtures("eventlog_debug")
def test_async_stores_log_the_same_lines(tmp_path: object) -> None:
    async def scenario() -> None:
        async with await eventlog.connect_async("memory://") as store:
            await store.save_delta("s1", _delta())
            await store.load("s1")

    with capture_logs() as logs:
        asyncio.run(scenario())
    assert [line["event"] for line in logs] == ["save_delta", "load"]
    assert SENTINEL not in repr(logs)


def test_no_debug_line_when_debug_is_off() -> None:
    logging.getLogger("eventlog").setLevel(logging.INFO)
    try:
        with capture_logs() as logs, eventlog.connect("memory://") as store:
            store.save_delta("s1", _delta())
            store.load("s1")
    finally:
        logging.getLogger("eventlog").setLevel(logging.NOTSET)
    assert logs == []


def test_the_library_configures_no_logging() -> None:
    logger = logging.getLogger("eventlog")
    assert logger.handlers == [] and logger.level == logging.NOTSET
