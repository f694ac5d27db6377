"""Fixtures of the PostgreSQL tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .proxy import Proxy


@pytest.fixture
def proxy(server_dsn: str) -> Iterator[Proxy]:
    """A TCP proxy in front of the test server; the test sets its `judge`."""
    opened = Proxy(server_dsn)
    try:
        yield opened
    finally:
        opened.close()
