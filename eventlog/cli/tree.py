"""Render a session's live entries as a branch tree (for `eventlog show --tree`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from .._core.branch import branch_to
from ..model import Entry, SessionData

__all__ = ["entry_label", "printable", "render_tree"]

_LABEL_CHARS = 60
_KIND_LABELS = {"compaction": "[compaction]", "branch_summary": "[branch summary]"}
# C0, DEL and C1 controls, the line and paragraph separators, the bidi embeddings,
# overrides and isolates, and lone surrogates (argv that was not UTF-8).
_UNPRINTABLE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_CYCLE_HEADING: Final = "entries in a parent cycle (no root reaches them):"


_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control, bidi-control and surrogate character shown as an escape.

    Everything the command line prints that came from stored data or from argv goes
    through here, so text written by a model or a user cannot drive the terminal.
    """
    return _UNPRINTABLE.sub(_escape, text)


def entry_label(entry: Entry) -> str:
    """A one-line label: the kind, and a short text for messages and summaries (escaped)."""
    payload = entry.payload if isinstance(entry.payload, dict) else {}
    text = payload.get("summary") or payload.get("text") or payload.get("content")
    if isinstance(payload.get("message"), dict):
        message = payload["message"]
        role = message.get("role")
        text = text or message.get("content")
        label = f"{role}" if isinstance(role, str) else entry.kind
    else:
        label = _KIND_LABELS.get(entry.kind, entry.kind)
    if isinstance(text, list):
        text = " ".join(part.get("text", "") for part in text if isinstance(part, dict))
    if isinstance(text, str) and text:
        flat = " ".join(text.split())
        short = flat if len(flat) <= _LABEL_CHARS else flat[: _LABEL_CHARS - 1] + "…"
        return printable(f"{label}: {short}")
    return printable(label)


def render_tree(data: SessionData) -> Iterator[str]:
    """Yield the tree's lines: children in log order, the leaf's branch marked.

    A run of only children stays at one indent, as a transcript reads; a fork
    indents its branches. An entry whose parent is not live (history dropped
    by compaction) starts a root of its own. Entries no root reaches (their
    parents form a cycle) follow under a heading of their own, each cycle drawn
    from its first member in log order, so every live entry is shown once.
    """
    live = {entry.id: entry for entry in data.entries}
    children: dict[str | None, list[Entry]] = {}
    for entry in data.entries:
        parent = entry.parent_id if entry.parent_id in live else None
        children.setdefault(parent, []).append(entry)
    on_path = {entry.id for entry in branch_to(live, data.leaf_id)}

    shown: set[str] = set()
    for root in children.get(None, []):
        yield from _subtree(root, data.leaf_id, live, children, on_path, shown, frozenset())
    position = {entry.id: index for index, entry in enumerate(data.entries)}
    heading = False
    for entry in data.entries:
        if entry.id in shown:
            continue
        if not heading:
            heading = True
            yield _CYCLE_HEADING
        cycle = _cycle_above(entry, live)
        start = live[min(cycle, key=position.__getitem__)] if cycle else entry
        yield from _subtree(start, data.leaf_id, live, children, on_path, shown, cycle)


def _cycle_above(entry: Entry, live: dict[str, Entry]) -> frozenset[str]:
    """The ids of the parent cycle that `entry`'s ancestors run into."""
    ancestors = branch_to(live, entry.id)  # root first; a cycle stops it before a repeat
    repeated = ancestors[0].parent_id
    if repeated is None or repeated not in live:
        return frozenset()  # not reachable here: every unreached entry ends in a cycle
    ids = [ancestor.id for ancestor in ancestors]
    return frozenset(ids[: ids.index(repeated) + 1])


def _subtree(
    top: Entry,
    leaf_id: str | None,
    live: dict[str, Entry],
    children: dict[str | None, list[Entry]],
    on_path: set[str],
    shown: set[str],
    cycle: frozenset[str],
) -> Iterator[str]:
    # Iterative, so a session of any length renders without deep recursion; `shown`
    # stops a cycle from being walked round again.
    stack = [(top, "", "")]
    while stack:
        entry, prefix, connector = stack.pop()
        shown.add(entry.id)
        dot = "●" if entry.id in on_path else "○"
        note = ""
        if entry.parent_id is not None and entry.parent_id not in live:
            note = f" (parent {printable(entry.parent_id)} not live)"
        if entry.id in cycle:
            note += " (in a parent cycle)"
        if entry.id == leaf_id:
            note += "  ◀ leaf"
        yield f"{prefix}{connector}{dot} {printable(entry.id)}  {entry_label(entry)}{note}"
        kids = [kid for kid in children.get(entry.id, []) if kid.id not in shown]
        if len(kids) == 1:
            stack.append((kids[0], prefix + _continuation(connector), ""))
            continue
        inner = prefix + _continuation(connector)
        for index in reversed(range(len(kids))):
            stack.append((kids[index], inner, "└─ " if index == len(kids) - 1 else "├─ "))


def _continuation(connector: str) -> str:
    return {"": "", "├─ ": "│  ", "└─ ": "   "}[connector]
