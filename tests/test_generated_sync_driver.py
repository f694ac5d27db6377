"""The sync Postgres driver is exactly what the generator makes from the async one."""

from __future__ import annotations

from eventlog import _async_to_sync


def test_sync_driver_matches_the_async_source() -> None:
    expected = _async_to_sync.generate(_async_to_sync.SOURCE.read_text("utf-8"))
    assert _async_to_sync.TARGET.read_text("utf-8") == expected, (
        "run: python -m eventlog._async_to_sync"
    )


def test_generation_removes_every_async_construct() -> None:
    generated = _async_to_sync.TARGET.read_text("utf-8")
    for token in ("async ", "await ", "AsyncConnection", "asynccontextmanager"):
        assert token not in generated
