"""Fixtures of the format tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Backend

import eventlog


@pytest.fixture
def other_client(backend: Backend) -> Iterator[eventlog.Store]:
    """A second client of the backend's database (the same store for memory)."""
    if backend.name.startswith("memory"):
        yield backend.store
        return
    other = backend.connect(backend.url)
    try:
        yield other
    finally:
        other.close()
