"""The leaf-to-root walk over parent links: the one every caller shares.

Entries and records both name their parent by id; a parent that is not in the
map (history dropped by compaction) ends the walk. Stored links may form a
cycle (a session edited outside eventlog, or a file imported as it was), and
callers differ in what that means: `path` and the OpenAI adapter report it as
corruption, while an export or a tree drawing shows what is there. Hence the
cycle policy is the caller's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from ..errors import CorruptionError

__all__ = ["Linked", "branch_to", "cycle_error"]


class Linked(Protocol):
    """Anything with an id's parent link: `Entry` or `Record`."""

    @property
    def parent_id(self) -> str | None: ...


L = TypeVar("L", bound=Linked)


def branch_to(
    by_id: Mapping[str, L],
    leaf_id: str | None,
    *,
    on_cycle: Callable[[str], Exception] | None = None,
) -> list[L]:
    """The branch from its root to `leaf_id`, root first.

    Args:
        by_id: the nodes the walk may visit, by id; a parent id not in it ends the walk.
        leaf_id: where the walk starts; ``None`` or an id not in `by_id` gives ``[]``.
        on_cycle: the error to raise, made from the id the walk reached twice; without
            it a cycle ends the walk just before that id comes round again.
    """
    branch: list[L] = []
    seen: set[str] = set()
    current = leaf_id
    while current is not None and current in by_id:
        if current in seen:
            if on_cycle is not None:
                raise on_cycle(current)
            break
        seen.add(current)
        node = by_id[current]
        branch.append(node)
        current = node.parent_id
    branch.reverse()
    return branch


def cycle_error(session_id: str | None, entry_id: str | None = None) -> CorruptionError:
    """The error of a walk that met a parent cycle (at `entry_id`, when that is said)."""
    return CorruptionError(
        "the parent links form a cycle", session_id=session_id, entry_id=entry_id
    )
