"""The store under test: what the contract suite needs of it, and the fixture that opens it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from eventlog import Store


class BackendLike(Protocol):
    """What the `backend` fixture offers: the store and a way to count its raw records."""

    name: str
    store: Store

    def count_rows(self) -> int:
        """The raw records stored (rows, log records), to see that a call wrote nothing."""
        ...

    def reopen(self) -> Store:
        """Close the store and open the same data again."""
        ...


@dataclass
class Backend:
    """A store under test, as a user's factory hands it to the contract suite.

    Args:
        name: shown in test ids and messages.
        store: the store the contract tests call.
        count_rows: the number of raw records stored (rows, log records); the
            suite checks that a rejected call leaves it unchanged.
        reopen_store: opens the same data again after `store` was closed; `None`
            for a store whose data lives only as long as the object (it is kept).
    """

    name: str
    store: Store
    count_rows: Callable[[], int]
    reopen_store: Callable[[], Store] | None = None

    def reopen(self) -> Store:
        """Close the store and open the same data again (a store without `reopen_store` is kept)."""
        if self.reopen_store is None:
            return self.store
        self.store.close()
        self.store = self.reopen_store()
        return self.store


OpenBackend = Callable[[str, Path], BackendLike]
"""Opens a fresh, empty store of the named backend; `Path` is the test's own temporary folder."""


def backend_fixture(open_backend: OpenBackend, names: Sequence[str]) -> object:
    """A `backend` fixture parametrized over `names`, each opened by `open_backend`.

    Assign it in a conftest.py or test module (`backend = backend_fixture(...)`) to
    run the contract suite on those backends; the store is closed after each test.
    """

    @pytest.fixture(params=list(names), name="backend")
    def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendLike]:
        opened = open_backend(request.param, tmp_path)
        try:
            yield opened
        finally:
            opened.store.close()

    return backend
