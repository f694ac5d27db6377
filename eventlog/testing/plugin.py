"""The pytest plugin of the contract suite: the `backend` and `store` fixtures.

Load it with `pytest_plugins = ["eventlog.testing.plugin"]` in a conftest.py (or
`pytest -p eventlog.testing.plugin`). Its `backend` runs the reference in-memory
store; override `backend` with `eventlog.testing.backend_fixture` to test another.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eventlog import Store
from eventlog.memory import MemoryStore

from ._backend import Backend, BackendLike, backend_fixture


def _open_reference(name: str, tmp_path: Path) -> Backend:
    store = MemoryStore()
    return Backend(name, store, store.record_count)


backend = backend_fixture(_open_reference, ["memory"])


@pytest.fixture
def store(backend: BackendLike) -> Store:
    """The store of the `backend` under test."""
    return backend.store
