"""Totals over a store's sessions, read from the session index (no entry is loaded).

What `eventlog stats` and the summary line of `eventlog show --tree` print.
"""

from __future__ import annotations

import heapq
from typing import Final

import msgspec

from .errors import InvalidInputError
from .model import SessionInfo
from .store import Store

__all__ = ["StoreStats", "session_info", "store_stats"]

# Sessions listed per `list_sessions` call: few round trips, a bounded page in memory.
_PAGE_SIZE: Final = 1000


class StoreStats(msgspec.Struct, frozen=True):
    """Totals over the sessions of a store (or of those with an id prefix).

    Attributes:
        sessions: how many sessions.
        entries: live entries, summed.
        tombstones: records no longer live (what `purge` drops), summed.
        bytes: payload bytes of every stored record, summed.
        largest: the sessions with the most bytes, largest first (ties: the
            greater session id first).
    """

    sessions: int
    entries: int
    tombstones: int
    bytes: int
    largest: tuple[SessionInfo, ...]


def store_stats(store: Store, *, prefix: str | None = None, top: int = 5) -> StoreStats:
    """Add up the session index of `store`, a page at a time.

    Memory stays flat however many sessions there are: the pages are read one
    after another and only the `top` largest sessions are kept.

    Args:
        store: the store to read.
        prefix: only sessions whose id starts with this.
        top: how many of the largest sessions to return (0: none).

    Returns:
        The totals and the largest sessions.

    Raises:
        InvalidInputError: `top` is not an int >= 0.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise InvalidInputError("top must be an int >= 0")
    sessions = entries = tombstones = total_bytes = 0
    largest: list[tuple[int, str, SessionInfo]] = []
    cursor: str | None = None
    while True:
        page = store.list_sessions(prefix=prefix, limit=_PAGE_SIZE, cursor=cursor)
        for info in page.items:
            sessions += 1
            entries += info.entry_count
            tombstones += info.removed_count
            total_bytes += info.bytes
            # A bounded heap, smallest on top; the SessionInfo itself is never compared.
            item = (info.bytes, info.session_id, info)
            if len(largest) < top:
                heapq.heappush(largest, item)
            elif top and item[:2] > largest[0][:2]:
                heapq.heapreplace(largest, item)
        cursor = page.next_cursor
        if cursor is None:
            break
    ranked = sorted(largest, key=lambda item: item[:2], reverse=True)
    return StoreStats(
        sessions=sessions,
        entries=entries,
        tombstones=tombstones,
        bytes=total_bytes,
        largest=tuple(info for _, _, info in ranked),
    )


def session_info(store: Store, session_id: str) -> SessionInfo | None:
    """The index record of one session (counts, bytes, version), or `None` if it is absent.

    Read through `Store.list_sessions`, so no entry is loaded.
    """
    # Sessions are listed in id order and an id is the smallest of those it prefixes.
    listed = store.list_sessions(prefix=session_id, limit=1).items
    return next((item for item in listed if item.session_id == session_id), None)
