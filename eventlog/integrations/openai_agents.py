"""An OpenAI Agents SDK ``Session`` on any eventlog `AsyncStore`.

Each conversation item the SDK adds becomes one entry: its payload is the item
dict, its kind the item's ``type`` (or ``"item"`` for a bare ``{"role": ...,
"content": ...}`` message), its parent the item before it, and the newest item
is the session's leaf. The history the SDK sees is the branch from the root to
the leaf, so a session forked at an entry (`Store.fork`) continues from there.
`pop_item` and `clear_session` tombstone entries rather than erase them: the
removed items stay readable with ``load(at_version=...)`` until `Store.purge`.

Install with ``pip install eventlog[openai-agents]``::

    from agents import Agent, Runner
    from eventlog.integrations.openai_agents import EventlogSession

    async with await EventlogSession.from_url("chat-42", "sqlite:///eventlog.db") as session:
        result = await Runner.run(agent, "Hello", session=session)
"""

from __future__ import annotations

import asyncio
import random
import threading
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, cast
from weakref import WeakKeyDictionary

from agents.items import TResponseInputItem

from .._connect import connect_async
from ..errors import (
    ConcurrencyError,
    InvalidInputError,
    InvalidPayloadError,
    SessionNotFoundError,
)
from ..model import Entry, SessionDelta
from ..store import AsyncStore

if TYPE_CHECKING:
    # Imported for annotations only: SDK versions before SessionSettings work too.
    from agents.memory import SessionSettings

__all__ = ["DEFAULT_KIND", "EventlogSession", "UnstorableItemError"]

DEFAULT_KIND: Final = "item"
"""The entry kind of an item without a string ``type`` (a plain role/content message)."""

_FIRST_BACK_OFF: Final = 0.001
_MAX_BACK_OFF: Final = 0.05
"""Seconds: the ceiling of the jittered exponential back-off after a `ConcurrencyError`."""

_T = TypeVar("_T")


class UnstorableItemError(InvalidPayloadError, TypeError):
    """An item is not storable JSON: eventlog's `InvalidPayloadError`, and the
    `TypeError` the SDK's own sessions raise for it (``json.dumps`` does)."""


def _settings(value: SessionSettings | dict[str, Any] | None) -> SessionSettings | None:
    """The SDK's settings as its own sessions keep them: a dict becomes `SessionSettings`
    (an unknown key is a `TypeError`), None the default settings."""
    try:
        from agents.memory import SessionSettings
    except ImportError:  # an SDK before SessionSettings: nothing to normalize
        return value  # type: ignore[return-value]
    if value is None:
        return SessionSettings()
    if isinstance(value, SessionSettings):
        return value
    try:
        from agents.memory.session_settings import coerce_session_settings
    except ImportError:
        if not isinstance(value, dict):
            raise TypeError(
                f"session_settings must be SessionSettings or a dict, not {type(value).__name__}"
            ) from None
        unknown = sorted(set(value) - {"limit"})
        if unknown:
            raise TypeError(f"Unknown session settings: {', '.join(unknown)}") from None
        return SessionSettings(**value)
    return coerce_session_settings(value)


class _Closing:
    """What `EventlogSession.close` returns: awaiting it closes a store the session owns.

    The session is closed as soon as `close()` is called, awaited or not, as the SDK's
    sync `SQLiteSession.close()` is.
    """

    def __init__(self, release: Callable[[], Awaitable[None]] | None) -> None:
        self._release = release

    def __await__(self) -> Generator[Any, None, None]:
        if self._release is not None:
            yield from self._release().__await__()


def _kind(item: dict[str, Any]) -> str:
    kind = item.get("type")
    return kind if isinstance(kind, str) and kind else DEFAULT_KIND


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class _Batch:
    """The items of one `add_items` call, with the ids they keep across retries."""

    ids: list[str]
    payloads: list[dict[str, Any]]
    timestamp: str


@dataclass
class _Pending:
    """One queued write and the future its caller waits on."""

    future: asyncio.Future[Any]
    batch: _Batch | None = None
    run: Callable[[], Awaitable[Any]] | None = None


@dataclass
class _Shared:
    """What the sessions of one store share in this process: their write queues."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    writers: dict[tuple[str, asyncio.AbstractEventLoop], _Writer] = field(default_factory=dict)


_SHARED: WeakKeyDictionary[AsyncStore, _Shared] = WeakKeyDictionary()
_SHARED_LOCK: Final = threading.Lock()


def _shared(store: AsyncStore) -> _Shared | None:
    """The process-wide state of a store, or None if the store cannot be a weak key."""
    with _SHARED_LOCK:
        try:
            shared = _SHARED.get(store)
            if shared is None:
                shared = _SHARED[store] = _Shared()
        except TypeError:  # not hashable or not weakly referable: state per session object
            return None
        return shared


def _succeed(group: list[_Pending], result: object) -> None:
    for pending in group:
        if not pending.future.done():  # done: its caller was cancelled and left
            pending.future.set_result(result)


def _fail(group: list[_Pending], error: Exception) -> None:
    for pending in group:
        if not pending.future.done():
            pending.future.set_exception(error)


class _Writer:
    """The writes to one session through one store from one event loop, one at a time.

    Why: every write names its parent (the current leaf) and so is read-then-write,
    checked with ``expected_version``. Writers of one process queue here instead of
    racing each other, and the `add_items` calls waiting in the queue are appended in
    one `save_delta`, in call order. Only writers elsewhere (other stores, processes)
    can still cause a `ConcurrencyError`; those are retried after a jittered back-off,
    with no cap on the attempts: each such error means another writer's change landed.
    """

    def __init__(
        self,
        store: AsyncStore,
        session_id: str,
        shared: _Shared,
        key: tuple[str, asyncio.AbstractEventLoop],
    ) -> None:
        self.store = store
        self.session_id = session_id
        self.shared = shared
        self.key = key
        self.pending: deque[_Pending] = deque()
        self.task: asyncio.Task[None] | None = None

    async def submit(self, pending: _Pending) -> Any:
        self.pending.append(pending)
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._drain())
        # A cancelled caller cancels its future: a write not yet started is dropped; one
        # under way completes (its items land together or not at all).
        return await pending.future

    async def _drain(self) -> None:
        group: list[_Pending] = []
        try:
            while self.pending:
                group = [self.pending.popleft()]
                if group[0].batch is not None:
                    while self.pending and self.pending[0].batch is not None:
                        group.append(self.pending.popleft())
                group = [pending for pending in group if not pending.future.done()]
                if group and group[0].batch is not None:
                    await self._add(group)
                elif group:
                    assert group[0].run is not None
                    await self._settle(group, group[0].run)
        except BaseException:
            for pending in [*group, *self.pending]:
                if not pending.future.done():
                    pending.future.cancel()
            raise
        finally:
            self.pending.clear()
            self.task = None
            with self.shared.lock:
                if self.shared.writers.get(self.key) is self:
                    del self.shared.writers[self.key]

    async def _settle(self, group: list[_Pending], run: Callable[[], Awaitable[Any]]) -> None:
        """Run one write for the group; its result or error goes to each waiting caller."""
        try:
            result = await run()
        except Exception as error:
            _fail(group, error)
        else:
            _succeed(group, result)

    async def _add(self, group: list[_Pending]) -> None:
        try:
            await self._append([pending.batch for pending in group if pending.batch is not None])
        except InvalidInputError as error:
            if len(group) == 1:
                _fail(group, error)
                return
            # One call's items were refused, so nothing was written: write each call
            # alone, so that each caller gets its own outcome and its own error positions.
            for pending in group:
                if pending.batch is not None and not pending.future.done():
                    await self._settle([pending], partial(self._append, [pending.batch]))
        except Exception as error:
            _fail(group, error)
        else:
            _succeed(group, None)

    async def _append(self, batches: list[_Batch]) -> None:
        """Append the batches after the current leaf, as one chain, in one write."""
        leaf = batches[-1].ids[-1]

        async def attempt() -> None:
            # The index row alone: the leaf to append after and the version to expect.
            info = await self.store.info(self.session_id)
            parent = None if info is None else info.leaf_id
            entries: list[Entry] = []
            for batch in batches:
                for entry_id, payload in zip(batch.ids, batch.payloads, strict=True):
                    entries.append(
                        Entry(entry_id, parent, _kind(payload), batch.timestamp, payload)
                    )
                    parent = entry_id
            await self.store.save_delta(
                self.session_id,
                SessionDelta(new_entries=entries, leaf_id=leaf),
                expected_version=0 if info is None else info.version,
            )

        try:
            await self.retrying(attempt)
        except InvalidInputError as error:
            where = error.where
            if len(batches) == 1 and where is not None and where.startswith("new_entries["):
                # One call's items are the delta's entries, in order: name the caller's argument.
                error.where = "items[" + where.removeprefix("new_entries[")
            if type(error) is InvalidPayloadError:  # not JSON (too large is not a TypeError)
                raise UnstorableItemError(
                    error.message,
                    session_id=error.session_id,
                    entry_id=error.entry_id,
                    where=error.where,
                ) from None
            raise

    async def pop(self) -> TResponseInputItem | None:
        async def attempt() -> TResponseInputItem | None:
            info = await self.store.info(self.session_id)
            if info is None or info.leaf_id is None:
                return None
            # The leaf and the entry before it on the branch (if that one is live).
            tail = await _tail(self.store, self.session_id, 2)
            if not tail:
                return None
            last = tail[-1]
            leaf = tail[-2].id if len(tail) > 1 else None
            await self.store.save_delta(
                self.session_id,
                SessionDelta(removed_entry_ids=[last.id], leaf_id=leaf),
                expected_version=info.version,
            )
            return cast(TResponseInputItem, last.payload)

        return await self.retrying(attempt)

    async def clear(self) -> None:
        async def attempt() -> None:
            # Every live entry is tombstoned, so every id is read: O(items), once.
            data = await self.store.load(self.session_id, raw=True)
            if data is None or not data.entries:
                return
            await self.store.save_delta(
                self.session_id,
                SessionDelta(removed_entry_ids=[entry.id for entry in data.entries], leaf_id=None),
                expected_version=data.version,
            )

        await self.retrying(attempt)

    async def retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run a read-then-write step until no other writer got in between."""
        ceiling = _FIRST_BACK_OFF
        while True:
            try:
                return await attempt()
            except ConcurrencyError:
                # Full jitter: writers that collided spread out instead of colliding again.
                await asyncio.sleep(random.uniform(0, ceiling))
                ceiling = min(ceiling * 2, _MAX_BACK_OFF)


async def _tail(store: AsyncStore, session_id: str, limit: int | None) -> list[Entry]:
    """The last `limit` entries of the session's branch (all with None), oldest first:
    O(limit) reads, whatever the session holds. None for an absent session."""
    try:
        return await store.path(session_id, limit=limit)
    except SessionNotFoundError:
        return []


class EventlogSession:
    """Conversation history for the OpenAI Agents SDK, kept in an eventlog store.

    Implements the SDK's ``agents.memory.Session`` protocol. Safe to share
    between tasks and event loops, and several instances (or processes) may
    write the same session: concurrent additions all land, each call's items
    together, one call after another. Within a process the writes to a session
    queue up (waiting additions go in one write); writers elsewhere are told
    apart with ``expected_version`` and retried.

    Args:
        session_id: the eventlog session that holds the conversation.
        store: any `AsyncStore` (``await eventlog.connect_async(url)``).
        session_settings: the SDK's settings; ``limit`` caps `get_items`.
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str,
        store: AsyncStore,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.store = store
        self.session_settings = _settings(session_settings)
        self._owns_store = False
        self._closed = False
        self._own_shared: _Shared | None = None

    @classmethod
    async def from_url(
        cls,
        session_id: str,
        url: str,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        **options: Any,
    ) -> Self:
        """Open a store with `eventlog.connect_async` and a session on it.

        The session owns that store: `close` (or ``async with``) closes it.

        Raises:
            InvalidConfigError: the URL or an option is not usable.
            StoreUnavailableError: the database cannot be reached or opened.
        """
        settings = _settings(session_settings)  # a bad one is refused before connecting
        session = cls(session_id, await connect_async(url, **options), session_settings=settings)
        session._owns_store = True
        return session

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The conversation, oldest first: the latest `limit` items, or all of them.

        Args:
            limit: how many of the newest items to return (default:
                ``session_settings.limit``, else all); 0 or less returns none.
        """
        self._check_open()
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        if limit is not None and limit <= 0:
            return []
        return [
            cast(TResponseInputItem, entry.payload)
            for entry in await _tail(self.store, self.session_id, limit)
        ]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append items after the newest one; the last becomes the leaf.

        Raises:
            InvalidInputError: `items` is not a list of dicts, or an item is not
                storable JSON (nothing of the call is written); for the latter an
                `UnstorableItemError`, which is also a `TypeError`.
            RuntimeError: the session is closed.
        """
        self._check_open()
        if not isinstance(items, list | tuple):
            raise InvalidInputError(
                f"items must be a list of dicts, not {type(items).__name__}",
                session_id=self.session_id,
                where="items",
            )
        payloads: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidInputError(
                    f"an item must be a dict, not {type(item).__name__}",
                    session_id=self.session_id,
                    where=f"items[{index}]",
                )
            payloads.append(dict(item))
        if not payloads:
            return
        # Ids fixed before the first attempt: a retried write is the same write.
        batch = _Batch([f"item-{uuid.uuid4().hex}" for _ in payloads], payloads, _now())
        await self._writer().submit(_Pending(self._future(), batch=batch))

    async def pop_item(self) -> TResponseInputItem | None:
        """Tombstone the newest item and return it (`None` if there is none).

        Its parent becomes the leaf, so the next `add_items` continues from there.
        """
        self._check_open()
        writer = self._writer()
        popped = await writer.submit(_Pending(self._future(), run=writer.pop))
        return cast(TResponseInputItem | None, popped)

    async def clear_session(self) -> None:
        """Tombstone every item; the session stays, empty, with its history until purged."""
        self._check_open()
        writer = self._writer()
        await writer.submit(_Pending(self._future(), run=writer.clear))

    @staticmethod
    def _future() -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    def _writer(self) -> _Writer:
        """The write queue of this session for this store and the running event loop."""
        shared = _shared(self.store)
        if shared is None:
            if self._own_shared is None:
                self._own_shared = _Shared()
            shared = self._own_shared
        key = (self.session_id, asyncio.get_running_loop())
        with shared.lock:
            writer = shared.writers.get(key)
            if writer is None:
                writer = shared.writers[key] = _Writer(self.store, self.session_id, shared, key)
        return writer

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")

    def close(self) -> Awaitable[None]:
        """Close the session: every later call raises `RuntimeError`.

        ``await session.close()`` also closes the store if this session opened it
        (`from_url`); a plain ``session.close()`` (as with the SDK's sync
        `SQLiteSession`) closes the session alone. Closing twice is harmless.
        """
        owned = self._owns_store and not self._closed
        self._closed = True
        return _Closing(self.store.close if owned else None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"EventlogSession({self.session_id!r})"
