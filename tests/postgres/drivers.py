"""The Postgres drivers, as one fixture: how to open each store, what to hook.

Three stores: the sync one; the async one on worker threads (the default
`AsyncPostgresStore`, which runs the sync driver, so its hooks are the sync
module's); and the async one on a loop thread of its own (`HomeLoopPostgresStore`,
``async_runner="loop"``), which runs the asyncio driver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from conftest import SyncFacade

from eventlog._postgres import driver as sync_driver_module
from eventlog._postgres import driver_async as async_driver_module
from eventlog.postgres import AsyncPostgresStore, HomeLoopPostgresStore, PostgresStore

__all__ = ["Driver", "driver"]


@dataclass(frozen=True)
class Driver:
    """One of the Postgres stores: how to open it, which driver classes to hook."""

    name: str
    module: ModuleType
    locking: type[Any]
    optimistic: type[Any]
    opener: Callable[..., Any]

    def open(self, url: str, **options: Any) -> Any:
        return self.opener(url, **options)


def _async(store_class: Any) -> Callable[..., Any]:
    return lambda url, **options: SyncFacade(lambda: store_class.open(url, **options))


_SYNC_CLASSES = (
    sync_driver_module,
    sync_driver_module._PostgresTransaction,
    sync_driver_module._OptimisticTransaction,
)
_DRIVERS = {
    "sync": Driver("sync", *_SYNC_CLASSES, PostgresStore.open),
    "async-threads": Driver("async-threads", *_SYNC_CLASSES, _async(AsyncPostgresStore)),
    "async-loop": Driver(
        "async-loop",
        async_driver_module,
        async_driver_module._AsyncPostgresTransaction,
        async_driver_module._AsyncOptimisticTransaction,
        _async(HomeLoopPostgresStore),
    ),
}


@pytest.fixture(params=sorted(_DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    """Each test that takes it runs on the sync store and on both async ones."""
    return _DRIVERS[request.param]
