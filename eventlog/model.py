"""The data model: entries, sessions, deltas and the results of calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeAlias

import msgspec
from msgspec import UNSET, UnsetType

__all__ = [
    "UNSET",
    "Change",
    "ChangePage",
    "Entry",
    "JSONObject",
    "Page",
    "Payload",
    "RawJSON",
    "RekeyOutcome",
    "SaveResult",
    "SessionData",
    "SessionDelta",
    "SessionInfo",
    "UnsetType",
]

JSONObject: TypeAlias = dict[str, Any]


class RawJSON(bytes):
    """The exact bytes of a JSON object, stored as given (whitespace included).

    Validated by the same rules as a dict payload; `load(raw=True)` returns
    payloads as `RawJSON`.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"RawJSON(<{len(self)} bytes>)"

    # bytes has its own str(), which shows the content: str(), f-strings, "%s" and
    # log lines must hide the payload as repr does. `bytes(raw)` still gives the bytes.
    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return format(repr(self), format_spec)


Payload: TypeAlias = "JSONObject | RawJSON"


class Entry(msgspec.Struct, frozen=True):
    """One node of a session tree.

    Attributes:
        id: unique within the session; 1..255 UTF-8 bytes, no NUL.
        parent_id: the parent entry's id, `None` for a root.
        kind: opaque to the engine (`message`, `compaction`, `branch_summary`...).
        timestamp: as the caller gave it; never rewritten.
        payload: a JSON object (dict), or `RawJSON` bytes.
    """

    id: str
    parent_id: str | None = None
    kind: str = "message"
    timestamp: str | None = None
    payload: JSONObject | RawJSON = msgspec.field(default_factory=dict)

    def __repr__(self) -> str:
        # Payloads may hold private text: never show them.
        return (
            f"Entry(id={self.id!r}, parent_id={self.parent_id!r}, kind={self.kind!r}, "
            f"timestamp={self.timestamp!r}, payload=<{type(self.payload).__name__}>)"
        )


class SessionData(msgspec.Struct, frozen=True):
    """A whole session: what `save` takes and `load` returns.

    Equality compares the session's content (`entries`, `leaf_id`, `metadata`),
    so `store.load(sid) == data` holds after `store.save(sid, data)`; the
    read-only fields the store fills on load do not take part.
    """

    entries: list[Entry] = msgspec.field(default_factory=list)
    leaf_id: str | None = None
    metadata: JSONObject | RawJSON = msgspec.field(default_factory=dict)
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    parent_session_id: str | None = None
    forked_from_entry_id: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionData):
            return NotImplemented
        return (
            self.leaf_id == other.leaf_id
            and self.metadata == other.metadata
            and self.entries == other.entries
        )

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"SessionData(<{len(self.entries)} entries>, leaf_id={self.leaf_id!r}, "
            f"metadata=<{type(self.metadata).__name__}>, version={self.version})"
        )


class SessionDelta(msgspec.Struct, frozen=True):
    """What changed since the caller's last save (mirrors Flue's `saveDelta`).

    Attributes:
        new_entries: entries to append, in order.
        removed_entry_ids: entries the caller dropped; unknown ids are a no-op.
        leaf_id: the new leaf, or `UNSET` to keep the stored one.
        metadata: replaces the stored metadata whole, or `UNSET` to keep it.
    """

    new_entries: list[Entry] = msgspec.field(default_factory=list)
    removed_entry_ids: list[str] = msgspec.field(default_factory=list)
    leaf_id: str | UnsetType | None = UNSET
    metadata: JSONObject | RawJSON | UnsetType = UNSET

    def __repr__(self) -> str:
        return (
            f"SessionDelta(<{len(self.new_entries)} new>, "
            f"<{len(self.removed_entry_ids)} removed>, leaf_id={self.leaf_id!r}, "
            f"metadata=<{type(self.metadata).__name__}>)"
        )


class SaveResult(msgspec.Struct, frozen=True):
    """What a write did.

    Attributes:
        version: the session's version after the call.
        appended: ids written as new records (new, revived or changed).
        skipped: ids already stored with identical content.
        tombstoned: ids that stopped being live.
        superseded: ids whose content `save` replaced (also in `appended`).
        moved: ids `save` re-appended to restore the snapshot's order (also in `appended`).
    """

    version: int
    appended: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    tombstoned: tuple[str, ...] = ()
    superseded: tuple[str, ...] = ()
    moved: tuple[str, ...] = ()
    changed: bool = False


class SessionInfo(msgspec.Struct, frozen=True):
    """The index record of one session.

    Attributes:
        entry_count: live entries.
        removed_count: stored records that are no longer live (what `purge` drops).
        bytes: payload bytes of every stored record, live or not.
        leaf_id: the session's leaf (the current branch tip), or None.
    """

    session_id: str
    version: int
    entry_count: int
    removed_count: int
    bytes: int
    created_at: datetime
    updated_at: datetime
    parent_session_id: str | None = None
    forked_from_entry_id: str | None = None
    leaf_id: str | None = None


class Page(msgspec.Struct, frozen=True):
    """One page of `list_sessions`; pass `next_cursor` back for the next."""

    items: list[SessionInfo]
    next_cursor: str | None = None


# -- the change feed (`changes`) ----------------------------------------------


class Change(msgspec.Struct, frozen=True):
    """One version of a session, as `changes` reads it from the log.

    Fold it onto the entries before it: each `replaced` entry takes the place of
    the live entry with its id; each id of `removed_ids` leaves; each `appended`
    entry goes to the end (an id that was live leaves its old place first).
    `fold_changes` does that.

    Attributes:
        version: the version this change made.
        replaced: entries whose content changed in place, keeping their position.
        appended: records added at the end of the log, in order (new, revived, moved).
        removed_ids: ids that stopped being live and were not appended again.
        leaf_id: the session's leaf after this version.
        metadata: the metadata this version wrote, or `UNSET` if it kept it.
        created_at: when the version was written.
    """

    version: int
    replaced: list[Entry]
    appended: list[Entry]
    removed_ids: list[str]
    leaf_id: str | None
    metadata: JSONObject | RawJSON | UnsetType
    created_at: datetime

    def __repr__(self) -> str:
        return (
            f"Change(version={self.version}, <{len(self.replaced)} replaced>, "
            f"<{len(self.appended)} appended>, <{len(self.removed_ids)} removed>, "
            f"leaf_id={self.leaf_id!r}, metadata=<{type(self.metadata).__name__}>)"
        )


class ChangePage(msgspec.Struct, frozen=True):
    """One page of `changes`, oldest version first.

    Attributes:
        next_version: the `after_version` of the next page, or `None` when this
            page reaches the session's current version.
    """

    items: list[Change]
    next_version: int | None = None


RekeyOutcome: TypeAlias = Literal["rewrapped", "current", "plain", "sealed", "missing"]
"""What `rekey` did to a session: its data key rewrapped under the active key,
already under it, not sealed, sealed now (``seal=True``), or no such session."""
