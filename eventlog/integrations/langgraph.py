"""LangGraph checkpointers on any eventlog store: `EventlogSaver` and `AsyncEventlogSaver`.

Install with ``pip install eventlog[langgraph]``::

    import eventlog
    from eventlog.integrations.langgraph import EventlogSaver

    store = eventlog.connect("sqlite:///eventlog.db")
    graph = builder.compile(checkpointer=EventlogSaver(store))
    graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "chat-42"}})

How LangGraph's data maps onto eventlog:

- A thread and checkpoint namespace is one session,
  ``<prefix><quoted thread_id>/<quoted checkpoint_ns>`` (prefix ``langgraph/``; ids
  are percent-quoted so ``list_sessions(prefix=<prefix><thread>/)`` finds exactly the
  namespaces of one thread).
- A checkpoint is the entry ``c:<checkpoint id>`` (kind ``checkpoint``) whose parent is
  its parent checkpoint's entry. Its payload holds the serialized checkpoint without
  its channel values, the serialized metadata, the parent id, the run id, and for
  each channel value how it is recorded: inline (small values), a content-addressed
  blob entry ``b:<digest>`` (large values, stored once however many checkpoints
  share them), or a message list.
- A message list (a channel whose value is a list of messages with ids, as under
  ``MessagesState`` and ``add_messages``) is stored one entry per message
  (``m:<digest>``, kind ``message``, parented by the message before it) and the
  checkpoint records the list as a few segments of that chain (see
  `eventlog.integrations._langgraph_messages`), so a step writes the new messages,
  not the whole list again.
- A pending write is the entry ``w:<checkpoint id>:<task id>:<idx>`` (kind
  ``write``), so ``scan(id_prefix="w:<checkpoint id>:")`` reads a checkpoint's writes.
  Special writes (errors, interrupts) get a unique suffix and the newest wins, as
  in LangGraph's savers, which overwrite them.
- The latest checkpoint is the session's leaf. Each put sets it; two runs racing
  on one thread may leave an older one as leaf, so the latest is the leaf or the
  greatest checkpoint id after it (a ``scan`` from the leaf).

Values go through the saver's ``serde`` (``dumps_typed``/``loads_typed``), so
``get_tuple`` returns what LangGraph gave: types, order, bytes as bytes.

`copy_thread` forks each namespace session; `delete_thread` and ``prune(strategy=
"delete")`` delete sessions; ``prune(strategy="keep_latest")`` rewrites each
namespace down to its latest checkpoint, that checkpoint's writes and what its
values need (it refuses threads that use a ``DeltaChannel``, as PostgresSaver
does); `delete_for_runs` tombstones the run's checkpoints and their writes.
`get_delta_channel_history` is LangGraph's default walk over `get_tuple`.

Choices and limits:

- Errors as LangGraph's own savers give them: a config without ``thread_id`` raises
  ``KeyError``; an unknown checkpoint id reads as ``None``; writes for a checkpoint
  that does not exist are stored and read by nobody, as in InMemorySaver. A
  ``thread_id`` and ``checkpoint_ns`` longer than a session id allows (255 bytes once
  quoted) raise ``ValueError``.
- A checkpoint id put again with other content overwrites it (as InMemorySaver and
  PostgresSaver do): rare, and done by rewriting the session under optimistic locking.
- Messages are matched by object identity with what the saver last stored or read
  (what ``add_messages`` hands over); a message object mutated in place after it
  was checkpointed is not noticed. A read of a checkpoint whose message list is the
  one the saver last stored or read (the same segments, so the same bytes) returns
  a new list of those objects without reading the messages again: a graph's every
  ``invoke`` starts with that read. Removed messages stay stored for the older
  checkpoints that hold them, until ``prune``.
- ``delete_for_runs`` visits every LangGraph session (run ids are not indexed);
  ``prune`` and the overwrite above read whole sessions; neither is on a step's path.
"""

from __future__ import annotations

import asyncio
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import EventlogError
from ..store import AsyncStore, Store
from ._langgraph_ops import (
    Delete,
    Fork,
    GetEntry,
    Info,
    ListSessions,
    Load,
    Op,
    Path,
    Request,
    SaveDelta,
    SaverCore,
    SaveSnapshot,
    Scan,
)

__all__ = ["DEFAULT_PREFIX", "AsyncEventlogSaver", "EventlogSaver"]

DEFAULT_PREFIX: Final = "langgraph/"
"""The session id prefix of LangGraph threads."""

_WRITE_LOCKS: Final = 64
"""Writes of one thread and namespace take one of these locks (striped by a hash)."""

T = TypeVar("T")


def _next_version(current: str | int | float | None) -> str:
    """LangGraph's string channel versions: a zero-padded counter, then a random tie-break."""
    if current is None:
        number = 0
    elif isinstance(current, int | float):
        number = int(current)
    else:
        number = int(current.split(".")[0])
    return f"{number + 1:032}.{random.random():016}"


def _call_sync(store: Store, request: Request) -> Any:
    match request:
        case Info(sid):
            return store.info(sid)
        case GetEntry(sid, entry_id):
            return store.entry(sid, entry_id)
        case Scan(sid, prefix, after_id, limit, raw):
            return store.scan(sid, id_prefix=prefix, after_id=after_id, limit=limit, raw=raw)
        case Path(sid, leaf_id, limit):
            return store.path(sid, leaf_id=leaf_id, limit=limit)
        case SaveDelta(sid, delta):
            return store.save_delta(sid, delta)
        case SaveSnapshot(sid, data, expected):
            return store.save(sid, data, expected_version=expected)
        case Load(sid):
            return store.load(sid)
        case ListSessions(prefix, cursor):
            return store.list_sessions(prefix=prefix, cursor=cursor, limit=1000)
        case Fork(source_id, new_id):
            return store.fork(source_id, new_id)
        case Delete(sid):
            return store.delete(sid)
    raise AssertionError(request)


async def _call_async(store: AsyncStore, request: Request) -> Any:
    match request:
        case Info(sid):
            return await store.info(sid)
        case GetEntry(sid, entry_id):
            return await store.entry(sid, entry_id)
        case Scan(sid, prefix, after_id, limit, raw):
            return await store.scan(sid, id_prefix=prefix, after_id=after_id, limit=limit, raw=raw)
        case Path(sid, leaf_id, limit):
            return await store.path(sid, leaf_id=leaf_id, limit=limit)
        case SaveDelta(sid, delta):
            return await store.save_delta(sid, delta)
        case SaveSnapshot(sid, data, expected):
            return await store.save(sid, data, expected_version=expected)
        case Load(sid):
            return await store.load(sid)
        case ListSessions(prefix, cursor):
            return await store.list_sessions(prefix=prefix, cursor=cursor, limit=1000)
        case Fork(source_id, new_id):
            return await store.fork(source_id, new_id)
        case Delete(sid):
            return await store.delete(sid)
    raise AssertionError(request)


def _drive_sync(store: Store, op: Op[T]) -> T:
    try:
        request = next(op)
        while True:
            try:
                result = _call_sync(store, request)
            except EventlogError as exc:
                request = op.throw(exc)
            else:
                request = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def _drive_async(store: AsyncStore, op: Op[T]) -> T:
    try:
        request = next(op)
        while True:
            try:
                result = await _call_async(store, request)
            except EventlogError as exc:
                request = op.throw(exc)
            else:
                request = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


class _Saver(BaseCheckpointSaver[str], ABC):
    """What both savers share: the async methods, each one operation of `SaverCore`.

    A subclass says how an operation runs from a coroutine (`_arun`), and how a
    write of one thread does (`_awrite`).
    """

    def __init__(self, *, serde: SerializerProtocol | None, prefix: str) -> None:
        super().__init__(serde=serde)
        self._core = SaverCore(self.serde, prefix)

    @abstractmethod
    async def _arun(self, op: Op[T]) -> T:
        """Run one operation from a coroutine."""

    @abstractmethod
    async def _awrite(self, config: RunnableConfig, op: Op[T]) -> T:
        """Run one write of the thread `config` names, from a coroutine."""

    def get_next_version(self, current: str | None, channel: None) -> str:
        return _next_version(current)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._arun(self._core.get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        op = self._core.list(config, filter=filter, before=before, limit=limit)
        for item in await self._arun(op):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        op = self._core.put(config, checkpoint, metadata, new_versions)
        return await self._awrite(config, op)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._awrite(config, self._core.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._arun(self._core.delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._arun(self._core.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._arun(self._core.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._arun(self._core.prune(thread_ids, strategy))


class EventlogSaver(_Saver):
    """A LangGraph checkpointer on a sync eventlog `Store`.

    The async methods run the sync ones in a worker thread, so the saver also
    serves ``ainvoke``; for an `AsyncStore` use `AsyncEventlogSaver`.

    Args:
        store: any eventlog store (memory, SQLite, PostgreSQL).
        serde: LangGraph's serializer (default: the base saver's).
        prefix: the session id prefix of LangGraph threads.
    """

    def __init__(
        self,
        store: Store,
        *,
        serde: SerializerProtocol | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(serde=serde, prefix=prefix)
        self.store = store
        self._write_locks = tuple(threading.Lock() for _ in range(_WRITE_LOCKS))

    def _run(self, op: Op[T]) -> T:
        return _drive_sync(self.store, op)

    async def _arun(self, op: Op[T]) -> T:
        return await asyncio.to_thread(_drive_sync, self.store, op)

    def _write(self, config: RunnableConfig, op: Op[T]) -> T:
        # LangGraph's loop runs a task's put_writes and the next put in background
        # threads at once. On one session they race for its row and for the state
        # the store remembers, and the loser reads before it writes (three round
        # trips, after a lock wait); one after the other, each is one round trip.
        configurable = config.get("configurable") or {}
        key = (str(configurable.get("thread_id")), str(configurable.get("checkpoint_ns") or ""))
        with self._write_locks[hash(key) % _WRITE_LOCKS]:
            return _drive_sync(self.store, op)

    async def _awrite(self, config: RunnableConfig, op: Op[T]) -> T:
        return await asyncio.to_thread(self._write, config, op)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._run(self._core.get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        yield from self._run(self._core.list(config, filter=filter, before=before, limit=limit))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._write(config, self._core.put(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._write(config, self._core.put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._run(self._core.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(self._core.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(self._core.copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(self._core.prune(thread_ids, strategy))


class AsyncEventlogSaver(_Saver):
    """A LangGraph checkpointer on an eventlog `AsyncStore`.

    The sync methods run the async ones on a fresh event loop (an `AsyncStore`
    works from any loop), so they serve a sync ``invoke`` too, but not from a
    thread whose event loop is running: there they raise
    `asyncio.InvalidStateError`, as LangGraph's async savers do.

    Args:
        store: any eventlog async store (memory, SQLite, PostgreSQL).
        serde: LangGraph's serializer (default: the base saver's).
        prefix: the session id prefix of LangGraph threads.
    """

    def __init__(
        self,
        store: AsyncStore,
        *,
        serde: SerializerProtocol | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(serde=serde, prefix=prefix)
        self.store = store

    async def _arun(self, op: Op[T]) -> T:
        return await _drive_async(self.store, op)

    async def _awrite(self, config: RunnableConfig, op: Op[T]) -> T:
        return await _drive_async(self.store, op)

    def _run(self, op_factory: Callable[[], Awaitable[T]], method: str) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise asyncio.InvalidStateError(
                f"AsyncEventlogSaver.{method} is sync: call it from a thread without a "
                f"running event loop, or use `await saver.a{method}(...)`."
            )

        async def main() -> T:
            return await op_factory()

        return asyncio.run(main())

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._run(lambda: self.aget_tuple(config), "get_tuple")

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        op = self._core.list(config, filter=filter, before=before, limit=limit)
        yield from self._run(lambda: self._arun(op), "list")

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._run(lambda: self.aput(config, checkpoint, metadata, new_versions), "put")

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._run(lambda: self.aput_writes(config, writes, task_id, task_path), "put_writes")

    def delete_thread(self, thread_id: str) -> None:
        self._run(lambda: self.adelete_thread(thread_id), "delete_thread")

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(lambda: self.adelete_for_runs(run_ids), "delete_for_runs")

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(lambda: self.acopy_thread(source_thread_id, target_thread_id), "copy_thread")

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(lambda: self.aprune(thread_ids, strategy=strategy), "prune")
