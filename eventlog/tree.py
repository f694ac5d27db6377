"""Render a session's live entries as a branch tree (for `eventlog show --tree`)."""

from __future__ import annotations

from collections.abc import Iterator

from .model import Entry, SessionData

__all__ = ["entry_label", "render_tree"]

_LABEL_CHARS = 60
_KIND_LABELS = {"compaction": "[compaction]", "branch_summary": "[branch summary]"}


def entry_label(entry: Entry) -> str:
    """A one-line label: the kind, and a short text for messages and summaries."""
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
        return f"{label}: {short}"
    return label


def render_tree(data: SessionData) -> Iterator[str]:
    """Yield the tree's lines: children in log order, the leaf's branch marked.

    A run of only children stays at one indent, as a transcript reads; a fork
    indents its branches. An entry whose parent is not live (history dropped
    by compaction) starts a root of its own.
    """
    live = {entry.id: entry for entry in data.entries}
    children: dict[str | None, list[Entry]] = {}
    for entry in data.entries:
        parent = entry.parent_id if entry.parent_id in live else None
        children.setdefault(parent, []).append(entry)
    on_path: set[str] = set()
    current = data.leaf_id
    while current is not None and current in live and current not in on_path:
        on_path.add(current)
        current = live[current].parent_id

    # Iterative, so a session of any length renders without deep recursion.
    stack = [(root, "", "") for root in reversed(children.get(None, []))]
    while stack:
        entry, prefix, connector = stack.pop()
        dot = "●" if entry.id in on_path else "○"
        note = ""
        if entry.parent_id is not None and entry.parent_id not in live:
            note = f" (parent {entry.parent_id} not live)"
        if entry.id == data.leaf_id:
            note += "  ◀ leaf"
        yield f"{prefix}{connector}{dot} {entry.id}  {entry_label(entry)}{note}"
        kids = children.get(entry.id, [])
        if len(kids) == 1:
            stack.append((kids[0], prefix + _continuation(connector), ""))
            continue
        inner = prefix + _continuation(connector)
        for index in reversed(range(len(kids))):
            stack.append((kids[index], inner, "└─ " if index == len(kids) - 1 else "├─ "))


def _continuation(connector: str) -> str:
    return {"": "", "├─ ": "│  ", "└─ ": "   "}[connector]
