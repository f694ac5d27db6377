"""The checks an imported entry passes before it is spooled (the store's limits)."""

from __future__ import annotations

from .._core.codec import DEFAULT_MAX_ENTRY_BYTES, check_entry_id, prepare_delta
from ..errors import InvalidInputError
from ..model import Entry, JSONObject, SessionDelta
from ._lines import BadLine

__all__ = ["max_entry_bytes_of", "validate_entry", "validate_id", "validate_metadata"]


def validate_entry(session_id: str, entry: Entry, *, max_entry_bytes: int) -> bytes:
    """Check an entry by the store's own rules; return its payload bytes.

    Raises:
        BadLine: the entry would be refused by `save_delta`.
    """
    try:
        prepared = prepare_delta(
            session_id, SessionDelta(new_entries=[entry]), max_entry_bytes=max_entry_bytes
        )
    except InvalidInputError as exc:
        where = (exc.where or "").replace("new_entries[0].", "")
        raise BadLine(f"{exc.message} (at {where})", entry_id=exc.entry_id) from None
    return prepared.new_entries[0].payload


def validate_id(session_id: str, value: str, *, what: str) -> str:
    """Check an id read from a file by the store's rules, before anything looks it up.

    Raises:
        BadLine: not a valid entry id (e.g. a lone surrogate, which no index can hold).
    """
    try:
        return check_entry_id(value, session_id=session_id, where=what)
    except InvalidInputError as exc:
        raise BadLine(f"{exc.message} (at {what})", entry_id=exc.entry_id) from None


def validate_metadata(session_id: str, metadata: JSONObject, *, max_entry_bytes: int) -> None:
    """Check metadata read from a file by the store's rules.

    Raises:
        BadLine: `save_delta` would refuse it.
    """
    try:
        prepare_delta(session_id, SessionDelta(metadata=metadata), max_entry_bytes=max_entry_bytes)
    except InvalidInputError as exc:
        raise BadLine(exc.message) from None


def max_entry_bytes_of(store: object) -> int:
    """The store's entry size limit, or the default one."""
    limit = getattr(store, "max_entry_bytes", DEFAULT_MAX_ENTRY_BYTES)
    return limit if isinstance(limit, int) else DEFAULT_MAX_ENTRY_BYTES
