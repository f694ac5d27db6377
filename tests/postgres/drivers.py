"""The sync and the async Postgres driver, as one fixture: how to open each, what to hook."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from conftest import SyncFacade

from eventlog import _postgres_async, _postgres_sync
from eventlog.postgres import AsyncPostgresStore, PostgresStore

__all__ = ["Driver", "driver"]


@dataclass(frozen=True)
class Driver:
    """One of the two Postgres drivers: how to open its store, which classes to hook."""

    name: str
    module: ModuleType
    locking: type[Any]
    optimistic: type[Any]

    def open(self, url: str, **options: Any) -> Any:
        if self.module is _postgres_sync:
            return PostgresStore.open(url, **options)
        return SyncFacade(lambda: AsyncPostgresStore.open(url, **options))


_DRIVERS = {
    "sync": Driver(
        "sync",
        _postgres_sync,
        _postgres_sync._PostgresTransaction,
        _postgres_sync._OptimisticTransaction,
    ),
    "async": Driver(
        "async",
        _postgres_async,
        _postgres_async._AsyncPostgresTransaction,
        _postgres_async._AsyncOptimisticTransaction,
    ),
}


@pytest.fixture(params=sorted(_DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    """Each test that takes it runs once on the sync store and once on the async one."""
    return _DRIVERS[request.param]
