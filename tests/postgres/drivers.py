"""The sync and the async Postgres driver, as one fixture: how to open each, what to hook."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from conftest import SyncFacade

from eventlog._postgres import driver as sync_driver_module
from eventlog._postgres import driver_async as async_driver_module
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
        if self.module is sync_driver_module:
            return PostgresStore.open(url, **options)
        return SyncFacade(lambda: AsyncPostgresStore.open(url, **options))


_DRIVERS = {
    "sync": Driver(
        "sync",
        sync_driver_module,
        sync_driver_module._PostgresTransaction,
        sync_driver_module._OptimisticTransaction,
    ),
    "async": Driver(
        "async",
        async_driver_module,
        async_driver_module._AsyncPostgresTransaction,
        async_driver_module._AsyncOptimisticTransaction,
    ),
}


@pytest.fixture(params=sorted(_DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    """Each test that takes it runs once on the sync store and once on the async one."""
    return _DRIVERS[request.param]
