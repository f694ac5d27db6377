"""Retention: delete sessions nobody has written to for a while.

Deletion goes one session per transaction (`Store.delete`), and the candidates
are read a page at a time, so removing 100,000 idle sessions holds neither one
giant transaction nor the whole list in memory.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

from .errors import ConcurrencyError, InvalidInputError
from .store import Store

__all__ = ["DEFAULT_BATCH_SIZE", "delete_idle_sessions", "parse_duration"]

DEFAULT_BATCH_SIZE: Final = 500
# A larger page saves nothing measurable and would hold more of the listing in memory.
_MAX_BATCH_SIZE: Final = 10_000

_UNITS: Final[dict[str, timedelta]] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_PART: Final = re.compile(r"(\d+)([wdhms])")
_WHOLE: Final = re.compile(r"(?:\d+[wdhms])+")


def parse_duration(text: str) -> timedelta:
    """Read a duration such as ``30d``, ``12h``, ``2w`` or ``1d12h``.

    Units: ``w`` weeks, ``d`` days, ``h`` hours, ``m`` minutes, ``s`` seconds.

    Raises:
        InvalidInputError: the text is not such a duration, it is zero, or it is
            longer than a `timedelta` holds (about 2.7 million years).
    """
    if not isinstance(text, str):
        raise InvalidInputError(f"a duration must be a str, not {type(text).__name__}")
    cleaned = text.strip().lower()
    if not _WHOLE.fullmatch(cleaned):
        raise InvalidInputError(
            f"bad duration {_shown(text)}; use a number and a unit (w, d, h, m, s), e.g. 30d or 12h"
        )
    try:
        total = sum(
            (int(count) * _UNITS[unit] for count, unit in _PART.findall(cleaned)), timedelta()
        )
    except (OverflowError, ValueError):
        # ValueError: int() refuses more than 4300 digits.
        raise InvalidInputError(
            f"duration {_shown(text)} is too long (at most {timedelta.max.days} days)"
        ) from None
    if total <= timedelta():
        raise InvalidInputError(f"duration {_shown(text)} must be longer than zero")
    return total


def _shown(text: str) -> str:
    """The duration for a message, cut short: a 5000-digit number is not worth echoing."""
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def delete_idle_sessions(
    store: Store,
    older_than: timedelta,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
) -> int:
    """Delete every session whose last write is older than `older_than`.

    Candidates are read with `Store.list_sessions(updated_before=...)`,
    `batch_size` at a time, and each is removed with `Store.delete` in its own
    transaction, only if it is still at the version it was listed at: a
    session written to between its listing and its deletion is kept.

    Args:
        store: the store to clean.
        older_than: how long a session must have gone without a write.
        batch_size: sessions listed (and then deleted) per page; a larger value
            than 10,000 lists 10,000 at a time.
        now: the reference time (default: the current UTC time); timezone-aware.

    Returns:
        How many sessions were deleted: 0 when the cutoff (`now - older_than`)
        falls before the year 1, since no session is that old.

    Raises:
        InvalidInputError: `older_than` is not positive, `batch_size` is not a
            positive int, or `now` has no timezone.
    """
    if not isinstance(older_than, timedelta) or older_than <= timedelta():
        raise InvalidInputError("older_than must be a positive timedelta")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError("batch_size must be a positive int")
    if now is None:
        now = datetime.now(UTC)
    elif not isinstance(now, datetime) or now.tzinfo is None:
        raise InvalidInputError("now must be a timezone-aware datetime")
    try:
        cutoff = now - older_than
    except OverflowError:
        return 0
    page_size = min(batch_size, _MAX_BATCH_SIZE)
    deleted = 0
    cursor: str | None = None
    while True:
        # The cursor is the last session id seen, so deleting what a page listed
        # does not shift the next page.
        page = store.list_sessions(updated_before=cutoff, limit=page_size, cursor=cursor)
        for info in page.items:
            try:
                if store.delete(info.session_id, expected_version=info.version):
                    deleted += 1
            except ConcurrencyError:
                pass  # written to since it was listed: not idle any more

        cursor = page.next_cursor
        if cursor is None:
            return deleted
