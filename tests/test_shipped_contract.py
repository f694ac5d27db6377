"""The shipped contract suite, run the way `eventlog.testing` tells a user to: on a wrapper.

`CallCountingStore` stands for a user's own store wrapper (metrics, caching,
access control); it passes every call to a store inside. Pointing the `backend`
fixture at it with `backend_fixture` and subclassing `StoreContract` runs the
whole suite on it, as the package docstring shows.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from eventlog import SessionDelta, Store
from eventlog.memory import MemoryStore
from eventlog.testing import Backend, StoreContract, backend_fixture
from eventlog.testing.contract.properties import (
    ErrorPropertiesContract,
    SaveReconcilePropertiesContract,
)


class CallCountingStore:
    """A store wrapper that counts calls by name and passes each one to the store inside."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return method(*args, **kwargs)

        return counted

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> CallCountingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_wrapped(name: str, tmp_path: Path) -> Backend:
    inner = MemoryStore()
    return Backend(name, cast(Store, CallCountingStore(inner)), count_rows=inner.record_count)


backend = backend_fixture(open_wrapped, ["wrapped-memory"])


class TestWrappedStore(StoreContract, ErrorPropertiesContract, SaveReconcilePropertiesContract):
    """Every shipped contract test, on the wrapper."""


def test_calls_go_through_the_wrapper(backend: Backend) -> None:
    backend.store.save_delta("s", SessionDelta())
    assert backend.store.load("s") is not None
    assert cast(CallCountingStore, backend.store).calls == Counter(save_delta=1, load=1)


def test_import_eventlog_loads_neither_pytest_nor_hypothesis() -> None:
    code = (
        "import sys, eventlog; "
        "assert not {'pytest', 'hypothesis', 'eventlog.testing'} & set(sys.modules), sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


RECIPE_CONFTEST = """
import sqlite3
from pathlib import Path

import eventlog
from eventlog.testing import Backend, backend_fixture

pytest_plugins = ["eventlog.testing.plugin"]


def open_mine(name: str, tmp_path: Path) -> Backend:
    path = tmp_path / "mine.db"

    def count_rows() -> int:
        with sqlite3.connect(path) as conn:
            return sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("sessions", "entries", "session_versions")
            )

    return Backend(
        name,
        eventlog.connect(f"sqlite:///{path}"),
        count_rows=count_rows,
        reopen_store=lambda: eventlog.connect(f"sqlite:///{path}"),
    )


backend = backend_fixture(open_mine, ["mine"])
"""

RECIPE_TEST = """
from eventlog.testing import StoreContract


class TestMyStore(StoreContract):
    pass
"""


def test_the_documented_recipe_runs_the_suite(pytester: pytest.Pytester) -> None:
    """The two files of the `eventlog.testing` docstring, in a project of their own."""
    pytester.makeconftest(RECIPE_CONFTEST)
    pytester.makepyfile(test_contract=RECIPE_TEST)
    # The reopen tests are the ones that use `reopen_store`; the rest run above.
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "-k", "reopen")
    result.assert_outcomes(passed=3)
