"""Builders and checks shared by the contract tests (Protocol-level only)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from eventlog import (
    UNSET,
    Entry,
    EventlogError,
    RawJSON,
    SessionData,
    SessionDelta,
    SessionInfo,
    Store,
    UnsetType,
)

from .._backend import BackendLike

SID = "session-1"
# Private text that must never show up in an error message or a log line.
SENTINEL = "SENTINEL-private-3f9c1a"


def msg(
    entry_id: str,
    parent_id: str | None = None,
    text: str = "hello",
    *,
    kind: str = "message",
    timestamp: str | None = None,
) -> Entry:
    """A message entry whose payload depends on `text` (and on nothing else)."""
    return Entry(
        id=entry_id,
        parent_id=parent_id,
        kind=kind,
        timestamp=timestamp,
        payload={"role": "user", "text": text},
    )


def chain(ids: Sequence[str], parent_id: str | None = None, text: str = "t") -> list[Entry]:
    """Entries where each one's parent is the one before it."""
    entries = []
    for entry_id in ids:
        entries.append(msg(entry_id, parent_id, f"{text}-{entry_id}"))
        parent_id = entry_id
    return entries


def delta(
    *entries: Entry,
    removed: Sequence[str] = (),
    leaf: str | UnsetType | None = UNSET,
    metadata: dict[str, Any] | RawJSON | UnsetType = UNSET,
) -> SessionDelta:
    return SessionDelta(
        new_entries=list(entries),
        removed_entry_ids=list(removed),
        leaf_id=leaf,
        metadata=metadata,
    )


def raw_bytes(value: object) -> bytes:
    """The bytes of a payload or metadata that `load(raw=True)` returned."""
    assert isinstance(value, RawJSON), f"expected RawJSON, got {type(value).__name__}"
    return bytes(value)


def as_any(value: object) -> Any:
    """Let a deliberately ill-typed value through the type checker."""
    return value


def ids(data: SessionData | None) -> list[str]:
    assert data is not None
    return [entry.id for entry in data.entries]


def loaded(store: Store, session_id: str, **kwargs: Any) -> SessionData:
    data = store.load(session_id, **kwargs)
    assert data is not None, f"session {session_id!r} should exist"
    return data


def snapshot(store: Store, session_id: str) -> tuple[Any, ...] | None:
    """Everything `load` exposes about a session, with exact payload bytes."""
    data = store.load(session_id, raw=True)
    if data is None:
        return None
    return (
        data.version,
        data.entries,
        data.leaf_id,
        bytes(data.metadata) if isinstance(data.metadata, bytes) else data.metadata,
        data.created_at,
        data.updated_at,
        data.parent_session_id,
        data.forked_from_entry_id,
    )


@contextmanager
def unchanged(backend: BackendLike, *session_ids: str) -> Iterator[None]:
    """Assert that the block leaves the given sessions and the raw row count as they were."""
    before = {sid: snapshot(backend.store, sid) for sid in session_ids}
    rows = backend.count_rows()
    yield
    assert backend.count_rows() == rows
    after = {sid: snapshot(backend.store, sid) for sid in session_ids}
    assert after == before


def assert_where(error: EventlogError, *parts: str | int) -> None:
    """`error.where` names the given fields and indexes, in order (any separator style)."""
    where = error.where
    assert where is not None, f"{type(error).__name__} has no `where`"
    position = 0
    for part in parts:
        pattern = rf"(?<!\d){part}(?!\d)" if isinstance(part, int) else re.escape(part)
        found = re.compile(pattern).search(where, position)
        assert found is not None, f"{part!r} not in {where!r} after position {position}"
        position = found.end()


def assert_private(error: BaseException, secret: str = SENTINEL) -> None:
    """No message, field or chained cause's message of `error` reveals `secret`."""
    assert secret not in repr(error)
    seen: BaseException | None = error
    while seen is not None:
        assert secret not in str(seen)
        for name in ("where", "session_id", "entry_id", "message"):
            value = getattr(seen, name, None)
            assert value is None or secret not in str(value)
        seen = seen.__cause__ or seen.__context__


def info(store: Store, session_id: str) -> SessionInfo:
    """The `list_sessions` record of one session."""
    page = store.list_sessions(limit=1000)
    matches = [item for item in page.items if item.session_id == session_id]
    assert len(matches) == 1, f"session {session_id!r} not listed exactly once"
    return matches[0]


def nested_object(depth: int) -> dict[str, Any]:
    """A payload whose innermost object sits at `depth` (the payload itself is depth 1)."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def nested_array(depth: int) -> dict[str, Any]:
    """`{"a": [[...]]}` with the innermost array at `depth`."""
    value: list[Any] = []
    for _ in range(depth - 2):
        value = [value]
    return {"a": value}


def nested_raw(depth: int) -> RawJSON:
    return RawJSON(b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1))
