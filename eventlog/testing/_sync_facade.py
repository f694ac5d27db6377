"""The `Store` API over an `AsyncStore`, so the one contract suite runs async stores too."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from functools import cache
from typing import Any, cast

from eventlog import AsyncStore, Store


@cache
def _background_loop() -> asyncio.AbstractEventLoop:
    """One event loop, in a daemon thread, that every `SyncFacade` runs its calls on."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True, name="facade-loop").start()
    return loop


class SyncFacade:
    """The `Store` API over an `AsyncStore`, each call run on a background event loop."""

    def __init__(self, opener: Callable[[], Coroutine[Any, Any, AsyncStore]]) -> None:
        self.inner: AsyncStore = self._call(opener())

    @staticmethod
    def _call(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, _background_loop()).result()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)
        return lambda *args, **kwargs: self._result(method(*args, **kwargs))

    def _result(self, returned: Any) -> Any:
        if isinstance(returned, AsyncIterator):  # watch: iterated on the loop, one step a call
            return SyncIterator(returned)
        return self._call(returned)

    def close(self) -> None:
        self._call(self.inner.close())

    def __enter__(self) -> SyncFacade:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sync_store(opener: Callable[[], Coroutine[Any, Any, AsyncStore]]) -> Store:
    """A `SyncFacade` typed as the `Store` it stands in for (its methods are the inner store's)."""
    return cast(Store, SyncFacade(opener))


class SyncIterator(Iterator[Any]):
    """An async iterator stepped on the facade's loop: `next` blocks until its next item."""

    def __init__(self, inner: AsyncIterator[Any]) -> None:
        self.inner = inner

    def __next__(self) -> Any:
        try:
            return SyncFacade._call(_next(self.inner))
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        """Close the async iterator (its `aclose`), as a generator's `close` would."""
        aclose = getattr(self.inner, "aclose", None)
        if aclose is not None:
            SyncFacade._call(aclose())


async def _next(iterator: AsyncIterator[Any]) -> Any:
    return await anext(iterator)
