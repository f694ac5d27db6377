"""`HomeLoopPostgresStore`: the loop-bound async driver, usable from any event loop and thread.

``connect_async(url, async_runner="loop")`` opens it; the default async store
(`threaded.py`) runs the sync driver in threads instead, which keeps up with
many tasks where this one's single loop thread is CPU bound (issue #21).

psycopg's `AsyncConnectionPool` belongs to the loop that opened it. The driver
(`driver_async.py`) is that loop-bound store; this one keeps the driver's pool on a
`HomeLoop` of its own and runs every operation there, so a store opened under one
``asyncio.run`` keeps working under the next (as ``Runner.run_sync`` of the OpenAI
Agents SDK does), from threads each running their own loop, and closes from any
of them. The cost is one thread hop per call, measured in README "Choices".
"""

from __future__ import annotations

from typing import Any, TypeVar

from .._core.operations import Operation
from .._runner.home_loop import HomeLoop
from . import driver_async

__all__ = ["HomeLoopPostgresStore"]

T = TypeVar("T")


class HomeLoopPostgresStore(driver_async.AsyncPostgresStore):
    __doc__ = driver_async.AsyncPostgresStore.__doc__

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)  # checks everything, opens nothing
        self._home = HomeLoop("eventlog-postgres")

    @classmethod
    async def open(cls, url: str, **options: Any) -> HomeLoopPostgresStore:
        """Connect, migrate (unless ``migrate=False``) and open the pool, on the home loop.

        Raises:
            InvalidConfigError: the URL or an option is not usable.
            StoreUnavailableError: the server cannot be reached, or refuses us.
            SchemaVersionError: the schema is newer than this eventlog, or not ours.
        """
        store = cls(url, **options)
        try:
            await store._home.run(store._start())
        except BaseException:
            await store._home.run(store._pool.close())
            store._home.stop()
            raise
        return store

    async def migrate(self) -> list[int]:
        return await self._home.run(super().migrate())

    async def _execute(self, operation: Operation[T]) -> T:
        return await self._home.run(super()._execute(operation))

    async def _close(self) -> None:
        try:
            await self._home.run(super()._close())
        finally:
            self._home.stop()
