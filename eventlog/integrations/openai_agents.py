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

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, TypeVar, cast

from agents.items import TResponseInputItem

from ..connect import connect_async
from ..errors import ConcurrencyError, CorruptionError, InvalidInputError
from ..model import Entry, SessionData, SessionDelta
from ..store import AsyncStore

if TYPE_CHECKING:
    # Imported for annotations only: SDK versions before SessionSettings work too.
    from agents.memory import SessionSettings

__all__ = ["DEFAULT_KIND", "EventlogSession"]

DEFAULT_KIND: Final = "item"
"""The entry kind of an item without a string ``type`` (a plain role/content message)."""

_MAX_ATTEMPTS: Final = 50
"""Optimistic-lock retries per call before a ConcurrencyError is let through."""

_T = TypeVar("_T")


def _branch(data: SessionData, session_id: str) -> list[Entry]:
    """The live entries from the root to the leaf, oldest first."""
    by_id = {entry.id: entry for entry in data.entries}
    branch: list[Entry] = []
    seen: set[str] = set()
    current = data.leaf_id
    while current is not None and current in by_id:
        if current in seen:
            raise CorruptionError("the parent links form a cycle", session_id=session_id)
        seen.add(current)
        entry = by_id[current]
        branch.append(entry)
        current = entry.parent_id
    branch.reverse()
    return branch


def _kind(item: dict[str, Any]) -> str:
    kind = item.get("type")
    return kind if isinstance(kind, str) and kind else DEFAULT_KIND


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventlogSession:
    """Conversation history for the OpenAI Agents SDK, kept in an eventlog store.

    Implements the SDK's ``agents.memory.Session`` protocol. Safe to share
    between tasks, and several instances (or processes) may write the same
    session: every change is written with ``expected_version`` and retried on
    a `ConcurrencyError`, so concurrent additions all land, one after another.

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
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = session_id
        self.store = store
        self.session_settings = session_settings
        self._owns_store = False

    @classmethod
    async def from_url(
        cls,
        session_id: str,
        url: str,
        *,
        session_settings: SessionSettings | None = None,
        **options: Any,
    ) -> Self:
        """Open a store with `eventlog.connect_async` and a session on it.

        The session owns that store: `close` (or ``async with``) closes it.

        Raises:
            InvalidConfigError: the URL or an option is not usable.
            StoreUnavailableError: the database cannot be reached or opened.
        """
        session = cls(
            session_id, await connect_async(url, **options), session_settings=session_settings
        )
        session._owns_store = True
        return session

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The conversation, oldest first: the latest `limit` items, or all of them.

        Args:
            limit: how many of the newest items to return (default:
                ``session_settings.limit``, else all); 0 or less returns none.
        """
        if limit is None and self.session_settings is not None:
            limit = self.session_settings.limit
        data = await self.store.load(self.session_id)
        if data is None:
            return []
        branch = _branch(data, self.session_id)
        if limit is not None:
            branch = branch[-limit:] if limit > 0 else []
        return [cast(TResponseInputItem, entry.payload) for entry in branch]

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        """Append items after the newest one; the last becomes the leaf.

        Raises:
            InvalidInputError: an item is not a dict, or not storable JSON
                (nothing of the call is written).
        """
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
        ids = [f"item-{uuid.uuid4().hex}" for _ in payloads]
        timestamp = _now()

        async def attempt() -> None:
            data = await self.store.load(self.session_id, raw=True)
            parent = data.leaf_id if data is not None else None
            entries: list[Entry] = []
            for entry_id, payload in zip(ids, payloads, strict=True):
                entries.append(Entry(entry_id, parent, _kind(payload), timestamp, payload))
                parent = entry_id
            await self.store.save_delta(
                self.session_id,
                SessionDelta(new_entries=entries, leaf_id=ids[-1]),
                expected_version=data.version if data is not None else 0,
            )

        await self._retrying(attempt)

    async def pop_item(self) -> TResponseInputItem | None:
        """Tombstone the newest item and return it (`None` if there is none).

        Its parent becomes the leaf, so the next `add_items` continues from there.
        """

        async def attempt() -> TResponseInputItem | None:
            data = await self.store.load(self.session_id)
            if data is None:
                return None
            branch = _branch(data, self.session_id)
            if not branch:
                return None
            last = branch[-1]
            await self.store.save_delta(
                self.session_id,
                SessionDelta(
                    removed_entry_ids=[last.id],
                    leaf_id=branch[-2].id if len(branch) > 1 else None,
                ),
                expected_version=data.version,
            )
            return cast(TResponseInputItem, last.payload)

        return await self._retrying(attempt)

    async def clear_session(self) -> None:
        """Tombstone every item; the session stays, empty, with its history until purged."""

        async def attempt() -> None:
            data = await self.store.load(self.session_id, raw=True)
            if data is None or not data.entries:
                return
            await self.store.save_delta(
                self.session_id,
                SessionDelta(removed_entry_ids=[entry.id for entry in data.entries], leaf_id=None),
                expected_version=data.version,
            )

        await self._retrying(attempt)

    async def _retrying(self, attempt: Callable[[], Awaitable[_T]]) -> _T:
        """Run a read-then-write step again while another writer got in between."""
        for _ in range(_MAX_ATTEMPTS - 1):
            try:
                return await attempt()
            except ConcurrencyError:
                continue
        return await attempt()

    async def close(self) -> None:
        """Close the store if this session opened it (`from_url`)."""
        if self._owns_store:
            await self.store.close()

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
