"""Validation of the options a store is opened with (`connect` and the backends)."""

from __future__ import annotations

from typing import Final

from ..errors import InvalidConfigError

__all__ = ["MAX_TIMEOUT_SECONDS", "check_flag", "check_max_entry_bytes", "check_seconds"]

# The longest wait an option may ask for: SQLite's busy timeout is an int of
# milliseconds (a larger value wraps to "do not wait"), libpq's connect_timeout
# an int of seconds.
MAX_TIMEOUT_SECONDS: Final = 2_147_483


def check_max_entry_bytes(max_entry_bytes: object) -> int:
    """Validate the `max_entry_bytes` option."""
    if (
        isinstance(max_entry_bytes, bool)
        or not isinstance(max_entry_bytes, int)
        or (max_entry_bytes < 1)
    ):
        raise InvalidConfigError("max_entry_bytes must be a positive int")
    return max_entry_bytes


def check_snapshot_memo_bytes(snapshot_memo_bytes: object) -> int:
    """Validate the `snapshot_memo_bytes` option (0 turns the memo off)."""
    if (
        isinstance(snapshot_memo_bytes, bool)
        or not isinstance(snapshot_memo_bytes, int)
        or snapshot_memo_bytes < 0
    ):
        raise InvalidConfigError("snapshot_memo_bytes must be an int >= 0")
    return snapshot_memo_bytes


def check_seconds(name: str, value: object, *, zero: bool) -> float:
    """Validate a timeout option: a finite number of seconds (above 0 unless `zero`).

    Raises:
        InvalidConfigError: not a real number, NaN, infinite, negative or too large.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidConfigError(f"{name} must be a number of seconds")
    # Compared before any float(): a huge int would overflow it; NaN fails both sides.
    if not (0 <= value <= MAX_TIMEOUT_SECONDS) or (value == 0 and not zero):
        low = "0" if zero else "above 0"
        raise InvalidConfigError(
            f"{name} must be a number of seconds from {low} to {MAX_TIMEOUT_SECONDS}"
        )
    return float(value)


def check_flag(name: str, value: object) -> bool:
    """Validate a bool option (a string such as ``"no"`` would count as true)."""
    if not isinstance(value, bool):
        raise InvalidConfigError(f"{name} must be True or False")
    return value
