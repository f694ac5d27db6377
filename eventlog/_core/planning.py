"""Planning: the decisions of a write, free of IO.

Backends read a session's state and the few records a call concerns, ask this
module what to write (`plan_delta`, `plan_reconcile`, `plan_fork`,
`plan_purge`) and apply the resulting plan in one transaction. Nothing here
touches storage.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

import msgspec

from ..errors import ConcurrencyError, IdConflictError, InvalidLeafError
from ..model import SaveResult, UnsetType
from .codec import (
    EncodedEntry,
    PreparedDelta,
    PreparedSnapshot,
    check_stored,
)
from .records import Record, SessionState, branch_records

__all__ = [
    "PurgePlan",
    "WritePlan",
    "check_expected_version",
    "delta_lookup_ids",
    "live_after",
    "plan_delta",
    "plan_fork",
    "plan_purge",
    "plan_reconcile",
    "plan_reseal",
]


class WritePlan(msgspec.Struct, frozen=True):
    """What one write must store, decided before anything is written.

    Apply in this order: stamp `removals` with `state.version`, insert `appends`,
    then insert (`creates`) or update the index row to `state`, and record the
    version row (`leaf_id`, `metadata_changed`). A plan that is not `changed`
    writes nothing.
    """

    state: SessionState
    creates: bool
    changed: bool
    removals: list[int]
    appends: list[Record]
    metadata_changed: bool
    result: SaveResult


class PurgePlan(msgspec.Struct, frozen=True):
    """What `purge` does to one session, decided before anything is written.

    Apply in one transaction: delete every record that is not live, and the
    version rows before `floor`; the row of version `floor` takes `metadata`
    (the older rows that carried it are gone); then set the index row's
    `history_floor` to `floor`, `removed_count` to `removed_count` and `bytes`
    to the payload size of the records kept (less `overhead` bytes per record:
    what sealing adds, so a sealed session counts plaintext bytes, as its
    writes do). The version itself stays: a purge changes no content.
    """

    session_id: str
    floor: int
    metadata: bytes
    removed_count: int
    overhead: int = 0


def plan_purge(state: SessionState, *, overhead: int = 0) -> PurgePlan:
    """Decide what `purge` drops: all history before the session's current version.

    `overhead`: the bytes each stored payload has beyond its plaintext (sealing).
    """
    return PurgePlan(
        state.session_id, state.version, state.metadata, removed_count=0, overhead=overhead
    )


def check_expected_version(
    session_id: str, state: SessionState | None, expected_version: int | None
) -> None:
    """Raise `ConcurrencyError` unless the stored version is the expected one.

    `expected_version=0` means the session must not exist yet.
    """
    if expected_version is None:
        return
    actual = 0 if state is None else state.version
    if actual != expected_version:
        raise ConcurrencyError(
            f"expected version {expected_version}, but the session is at version {actual}",
            session_id=session_id,
            expected_version=expected_version,
            actual_version=actual,
        )


def delta_lookup_ids(delta: PreparedDelta, state: SessionState | None) -> list[str]:
    """The ids whose latest record `plan_delta` needs: new, removed, and the leaf after."""
    ids = dict.fromkeys(entry.id for entry in delta.new_entries)
    ids.update(dict.fromkeys(delta.removed_entry_ids))
    leaf = _target_leaf(delta, state)
    if leaf is not None:
        ids[leaf] = None
    return list(ids)


def _target_leaf(delta: PreparedDelta, state: SessionState | None) -> str | None:
    if isinstance(delta.leaf_id, UnsetType):
        return None if state is None else state.leaf_id
    return delta.leaf_id


def _new_record(entry: EncodedEntry, seq: int, version: int, pos: int | None = None) -> Record:
    return Record(
        seq,
        seq if pos is None else pos,
        entry.id,
        entry.parent_id,
        entry.kind,
        entry.timestamp,
        entry.payload,
        entry.digest,
        version,
    )


def _next_state(
    session_id: str,
    state: SessionState | None,
    *,
    changed: bool,
    leaf_id: str | None,
    metadata: bytes,
    appends: Sequence[Record],
    removed: int,
    now: datetime,
) -> SessionState:
    if state is None:
        return SessionState(
            session_id=session_id,
            version=1,
            leaf_id=leaf_id,
            metadata=metadata,
            next_seq=len(appends),
            entry_count=len(appends),
            removed_count=0,
            bytes=sum(len(record.payload) for record in appends),
            history_floor=0,
            created_at=now,
            updated_at=now,
        )
    if not changed:
        return state
    return msgspec.structs.replace(
        state,
        version=state.version + 1,
        leaf_id=leaf_id,
        metadata=metadata,
        next_seq=state.next_seq + len(appends),
        entry_count=state.entry_count + len(appends) - removed,
        removed_count=state.removed_count + removed,
        bytes=state.bytes + sum(len(record.payload) for record in appends),
        updated_at=now,
    )


def plan_delta(
    session_id: str,
    delta: PreparedDelta,
    state: SessionState | None,
    latest: Mapping[str, Record],
    *,
    expected_version: int | None,
    now: datetime,
) -> WritePlan:
    """Decide what a `save_delta` writes.

    Args:
        latest: the newest record of each id in `delta_lookup_ids` that has one.

    Raises:
        ConcurrencyError: `expected_version` does not match.
        IdConflictError: a new entry's id is stored with other content.
        InvalidLeafError: the leaf would not be live after the write.
    """
    check_expected_version(session_id, state, expected_version)
    version = 1 if state is None else state.version + 1
    next_seq = 0 if state is None else state.next_seq
    appends: list[Record] = []
    skipped: list[str] = []
    for index, entry in enumerate(delta.new_entries):
        stored = latest.get(entry.id)
        if stored is None:
            appends.append(_new_record(entry, next_seq + len(appends), version))
        elif stored.digest == entry.digest:
            skipped.append(entry.id)
        else:
            raise IdConflictError(
                "the id is already stored with different content",
                session_id=session_id,
                entry_id=entry.id,
                where=f"new_entries[{index}]",
            )
    removals: list[int] = []
    tombstoned: list[str] = []
    for removed_id in delta.removed_entry_ids:
        stored = latest.get(removed_id)
        if stored is not None and stored.live:
            removals.append(stored.seq)
            tombstoned.append(removed_id)

    leaf_id = _target_leaf(delta, state)
    if leaf_id is not None:
        appended_ids = {record.entry_id for record in appends}
        stored = latest.get(leaf_id)
        live_after = leaf_id in appended_ids or (
            stored is not None and stored.live and leaf_id not in tombstoned
        )
        if not live_after:
            raise InvalidLeafError(
                "the leaf is not a live entry after the write",
                session_id=session_id,
                entry_id=leaf_id,
                where="leaf_id",
            )

    metadata = delta.metadata
    if metadata is None:
        metadata = b"{}" if state is None else state.metadata
    return _plan(
        session_id,
        state,
        leaf_id=leaf_id,
        metadata=metadata,
        appends=appends,
        removals=removals,
        now=now,
        skipped=skipped,
        tombstoned=tombstoned,
    )


def plan_reconcile(
    session_id: str,
    snapshot: PreparedSnapshot,
    state: SessionState | None,
    live: Sequence[Record],
    *,
    expected_version: int | None,
    now: datetime,
    extends: bool = False,
) -> WritePlan:
    """Decide what a `save` writes so that the live log equals the snapshot.

    The live log is read in `pos` order, and new records go at its end. So the
    longest prefix of the snapshot whose entries are stored live and already in
    order stays where it is (a changed one among them is superseded in place:
    a new record at the same `pos`); every later snapshot entry is appended (an
    entry stored live there is moved, or superseded if its content changed),
    and live entries absent from the snapshot are tombstoned.

    Args:
        live: the session's live records in `pos` order (payloads not needed).
        extends: the caller knows that the snapshot's entries start with the
            live records' ids and digests, in order (so they are not compared).

    Raises:
        ConcurrencyError: `expected_version` does not match.
    """
    check_expected_version(session_id, state, expected_version)
    version = 1 if state is None else state.version + 1
    next_seq = 0 if state is None else state.next_seq
    if extends or _extends(snapshot.entries, live):
        # The common save: the stored live log, unchanged and in order, then new
        # entries (whose ids the live log cannot hold: a snapshot's ids are unique).
        known = len(live)
        return _plan(
            session_id,
            state,
            leaf_id=snapshot.leaf_id,
            metadata=snapshot.metadata,
            appends=[
                _new_record(entry, next_seq + index, version)
                for index, entry in enumerate(snapshot.entries[known:])
            ],
            removals=[],
            now=now,
            skipped=list(map(_entry_id, live)),
            tombstoned=[],
        )
    live_by_id = {record.entry_id: record for record in live}

    kept = 0
    last_pos = -1
    for entry in snapshot.entries:
        stored = live_by_id.get(entry.id)
        if stored is None or stored.pos < last_pos:
            break
        last_pos = stored.pos
        kept += 1

    appends: list[Record] = []
    removals: list[int] = []
    moved: list[str] = []
    superseded: list[str] = []
    skipped: list[str] = []
    for index, entry in enumerate(snapshot.entries):
        stored = live_by_id.get(entry.id)
        in_place = index < kept
        if stored is not None:
            if in_place and stored.digest == entry.digest:
                skipped.append(entry.id)
                continue
            removals.append(stored.seq)
            (moved if stored.digest == entry.digest else superseded).append(entry.id)
        pos = stored.pos if in_place and stored is not None else None
        appends.append(_new_record(entry, next_seq + len(appends), version, pos))
    in_snapshot = {entry.id for entry in snapshot.entries}
    tombstoned = [record.entry_id for record in live if record.entry_id not in in_snapshot]
    removals.extend(live_by_id[entry_id].seq for entry_id in tombstoned)

    return _plan(
        session_id,
        state,
        leaf_id=snapshot.leaf_id,
        metadata=snapshot.metadata,
        appends=appends,
        removals=sorted(removals),
        now=now,
        skipped=skipped,
        tombstoned=tombstoned,
        superseded=superseded,
        moved=moved,
    )


def live_after(plan: WritePlan, live: Sequence[Record]) -> list[Record]:
    """The live records in `pos` order once `plan` is applied to a log whose
    live records (in `pos` order) are `live`; payloads left out."""
    if not plan.changed:
        return list(live)
    added = [msgspec.structs.replace(record, payload=b"") for record in plan.appends]
    if not plan.removals:
        # Appends only: new records go after every live one (their pos is their seq).
        return [*live, *added]
    removed = set(plan.removals)
    after = [record for record in live if record.seq not in removed]
    after.extend(added)
    after.sort(key=_pos)
    return after


def _pos(record: Record) -> int:
    return record.pos


def _extends(entries: Sequence[EncodedEntry], live: Sequence[Record]) -> bool:
    """Whether `entries` start with the live records' ids and contents, in order."""
    if len(entries) < len(live):
        return False
    # Compared as lists made in C (no tuple per entry): this runs over every entry of a save.
    head = entries[: len(live)]
    return list(map(_id, head)) == list(map(_entry_id, live)) and list(map(_digest, head)) == list(
        map(_digest, live)
    )


_id: Final = operator.attrgetter("id")
_entry_id: Final = operator.attrgetter("entry_id")
_digest: Final = operator.attrgetter("digest")


def _plan(
    session_id: str,
    state: SessionState | None,
    *,
    leaf_id: str | None,
    metadata: bytes,
    appends: list[Record],
    removals: list[int],
    now: datetime,
    skipped: Sequence[str],
    tombstoned: Sequence[str],
    superseded: Sequence[str] = (),
    moved: Sequence[str] = (),
) -> WritePlan:
    """The plan of a write whose records are decided: a new version only if it changes
    anything (records, leaf or metadata)."""
    metadata_changed = state is None or metadata != state.metadata
    changed = bool(
        state is None or appends or removals or metadata_changed or leaf_id != state.leaf_id
    )
    new_state = _next_state(
        session_id,
        state,
        changed=changed,
        leaf_id=leaf_id,
        metadata=metadata,
        appends=appends,
        removed=len(removals),
        now=now,
    )
    result = SaveResult(
        version=new_state.version,
        appended=tuple(record.entry_id for record in appends),
        skipped=tuple(skipped),
        tombstoned=tuple(tombstoned),
        superseded=tuple(superseded),
        moved=tuple(moved),
        changed=changed,
    )
    return WritePlan(new_state, state is None, changed, removals, appends, metadata_changed, result)


def plan_reseal(state: SessionState, live: Sequence[Record], *, now: datetime) -> WritePlan:
    """Decide how a session is written again as its live entries (to seal a plain one).

    The live records become the whole log, in their order, added in the next
    version; the history before it is gone (the purge floor is the version the
    session had), so `changes` after that version still folds to the session.
    The caller deletes the session's rows and applies this as a creation, in one
    transaction. The version bump makes a concurrent optimistic writer, which
    planned on the old rows, plan again.
    """
    version = state.version + 1
    appends = [
        msgspec.structs.replace(
            record, seq=seq, pos=seq, added_in_version=version, removed_in_version=None
        )
        for seq, record in enumerate(live)
    ]
    new_state = msgspec.structs.replace(
        state,
        version=version,
        next_seq=len(appends),
        entry_count=len(appends),
        removed_count=0,
        bytes=sum(len(record.payload) for record in appends),
        history_floor=state.version,
        updated_at=now,
    )
    result = SaveResult(version=version, changed=True)
    return WritePlan(new_state, True, True, [], appends, True, result)


def plan_fork(
    source: SessionState,
    live: Sequence[Record],
    new_id: str,
    *,
    at_entry_id: str | None,
    now: datetime,
) -> WritePlan:
    """Decide what `fork` writes: the source's live entries (or one branch) as version 1.

    Raises:
        InvalidLeafError: `at_entry_id` is not a live entry of the source.
    """
    if at_entry_id is None:
        copied: Sequence[Record] = live
        leaf_id = source.leaf_id
    else:
        on_path = {
            record.entry_id for record in branch_records(source.session_id, live, at_entry_id)
        }
        copied = [record for record in live if record.entry_id in on_path]
        leaf_id = at_entry_id
    # A fork copies stored bytes without decoding them: check them as a load would,
    # so damage is reported where it is, not spread into a second session.
    check_stored(source.metadata, what="metadata", session_id=source.session_id)
    for record in copied:
        check_stored(
            record.payload, what="payload", session_id=source.session_id, entry_id=record.entry_id
        )
    appends = [
        msgspec.structs.replace(record, seq=seq, pos=seq, added_in_version=1)
        for seq, record in enumerate(copied)
    ]
    state = msgspec.structs.replace(
        _next_state(
            new_id,
            None,
            changed=True,
            leaf_id=leaf_id,
            metadata=source.metadata,
            appends=appends,
            removed=0,
            now=now,
        ),
        parent_session_id=source.session_id,
        forked_from_entry_id=leaf_id,
    )
    result = SaveResult(version=1, appended=tuple(r.entry_id for r in appends), changed=True)
    return WritePlan(state, True, True, [], appends, True, result)
