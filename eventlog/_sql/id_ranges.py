"""Id lists and id ranges as SQL backends query them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["iter_chunks", "prefix_successor"]


def iter_chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Split ids into chunks small enough for one `IN (...)` list."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def prefix_successor(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (None: no bound).

    Strings compare by code point (UTF-8 byte order), so incrementing the last
    character that can be incremented gives the bound.
    """
    chars = list(prefix)
    while chars:
        point = ord(chars.pop()) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return "".join(chars) + chr(point)
    return None
