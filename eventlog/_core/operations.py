"""The operations of DESIGN.md section 2, free of IO (psycopg's generators pattern).

Each function validates its arguments at once (so bad input never opens a
transaction) and returns an `Operation`: whether it needs a read or a write
transaction, and a function that starts its steps: a generator that yields
typed requests (`storage_requests`, one per `Transaction` method), is sent
each answer, and returns the operation's result. Steps can be started again,
so a driver may retry an operation whose optimistic write lost a race. The
sync and async stores are thin drivers that answer the requests on their
transaction; every decision is here or in `planning`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Final, Generic, Literal, TypeVar

import msgspec

from ..errors import (
    EventlogError,
    HistoryPurgedError,
    InvalidConfigError,
    InvalidIdError,
    InvalidInputError,
    InvalidLeafError,
    SessionExistsError,
    SessionNotFoundError,
)
from ..model import (
    ChangePage,
    Entry,
    Page,
    RekeyOutcome,
    SaveResult,
    SessionData,
    SessionInfo,
    UnsetType,
)
from . import folding, planning
from .codec import (
    MAX_ID_BYTES,
    check_entry_id,
    check_session_id,
    prepare_delta,
    prepare_snapshot_known,
)
from .planning import WritePlan
from .records import Record, SessionState, StateQuery
from .sealing import (
    SEAL_OVERHEAD,
    Sealer,
    SessionCipher,
    is_sealed,
    open_log,
    open_records,
    open_state,
    refuse_sealed,
    require_open,
)
from .snapshot_memo import SnapshotMemo
from .storage_requests import (
    Apply,
    BranchTail,
    Delete,
    LatestRecords,
    ListStates,
    LiveEntries,
    LiveRecord,
    LiveRecords,
    LogBetween,
    Purge,
    RecordsAt,
    ScanRecords,
    SetDataKey,
    State,
    StateAndLatest,
    Steps,
    VersionRowOf,
)

__all__ = [
    "Operation",
    "Steps",
    "changes",
    "delete",
    "entry",
    "fork",
    "info",
    "list_sessions",
    "load",
    "path",
    "purge",
    "rekey",
    "save",
    "save_delta",
    "scan",
]

T = TypeVar("T")


class Operation(msgspec.Struct, Generic[T], frozen=True):
    """A validated operation: its transaction mode, its steps, and what to log.

    `optimistic`: the steps read, then write once, and every write they depend
    on bumps the session's version (or creates it), so a backend may read
    without locks and make the write conditional on the version it read,
    starting the steps again if that write lost a race.

    `plan_if_new`: for an append, the write the steps would plan, and the
    result they would return, if the session were still in a state the backend
    knows (from its own last write) and none of the appended ids had a record;
    None where that cannot be said. A backend may send that write without
    reading, conditional on both, and run the steps if it does not apply.
    """

    name: str
    session_id: str
    mode: Literal["read", "write"]
    steps: Callable[[], Steps[T]]
    optimistic: bool = False
    plan_if_new: Callable[[SessionState], tuple[WritePlan, T] | None] | None = None
    single_statement: bool = False
    """A read whose steps make one request that one statement answers: a backend
    may run it without a transaction of its own (the statement is its snapshot)."""


def _now() -> datetime:
    return datetime.now(UTC)


def _check_expected(session_id: str, expected_version: object) -> None:
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 0
    ):
        raise InvalidInputError(
            "expected_version must be None or an int >= 0",
            session_id=session_id,
            where="expected_version",
        )


def _require(session_id: str, state: SessionState | None) -> SessionState:
    if state is None:
        raise SessionNotFoundError("no such session", session_id=session_id)
    return state


# -- writes -------------------------------------------------------------------


class _Sealing(msgspec.Struct, frozen=True):
    """How one write seals: the session's cipher and stored data key (None: plain),
    and the index row's metadata as read (sealed), kept where the write keeps it."""

    cipher: SessionCipher | None
    data_key: bytes | None
    stored_metadata: bytes | None

    def seal(self, plan: WritePlan) -> WritePlan:
        if self.cipher is None or self.data_key is None:
            return plan
        return self.cipher.seal_plan(
            plan, data_key=self.data_key, stored_metadata=self.stored_metadata
        )


def _write_sealing(
    sealer: Sealer | None, session_id: str, state: SessionState | None
) -> tuple[_Sealing, SessionState | None]:
    """How a write of `session_id` seals, and the state read with its metadata opened.

    A new session is sealed when the store has a keyring; an existing one keeps
    what it is (a database may hold plain and sealed sessions).
    """
    if state is None:
        if sealer is None:
            return _Sealing(None, None, None), None
        fresh, data_key = sealer.new_session(session_id)
        return _Sealing(fresh, data_key, None), None
    cipher, opened = open_state(sealer, state)
    return _Sealing(cipher, state.data_key, state.metadata), opened


def save_delta(
    session_id: object,
    delta: object,
    *,
    expected_version: object,
    max_entry_bytes: int,
    sealer: Sealer | None = None,
) -> Operation[SaveResult]:
    """Append a delta's entries and tombstone its removed ids (see `Store.save_delta`)."""
    sid = check_session_id(session_id)
    _check_expected(sid, expected_version)
    prepared = prepare_delta(sid, delta, max_entry_bytes=max_entry_bytes)
    expected = expected_version if isinstance(expected_version, int) else None

    def steps() -> Steps[SaveResult]:
        # The ids the delta names are known before the state is read, so both
        # reads go together; only a kept leaf (leaf_id UNSET) needs a second look.
        asked = planning.delta_lookup_ids(prepared, None)
        read, latest = yield from StateAndLatest(sid, asked)
        sealing, state = _write_sealing(sealer, sid, read)
        if isinstance(prepared.leaf_id, UnsetType):
            # Only a kept leaf depends on the state read: the stored one may be unasked.
            missing = [i for i in planning.delta_lookup_ids(prepared, state) if i not in asked]
            if missing:
                latest = {**latest, **(yield from LatestRecords(sid, missing))}
        keyed = prepared if sealing.cipher is None else sealing.cipher.key_delta(prepared)
        plan = planning.plan_delta(sid, keyed, state, latest, expected_version=expected, now=_now())
        if plan.changed:
            yield from Apply(sealing.seal(plan))
        return plan.result

    def plan_if_new(known: SessionState) -> tuple[WritePlan, SaveResult] | None:
        # Removed ids, or a leaf kept or named outside the new entries, need
        # their stored records; a version that does not match needs the truth.
        if not prepared.new_entries or prepared.removed_entry_ids:
            return None
        if expected is not None and expected != known.version:
            return None
        try:
            sealing, state = _write_sealing(sealer, sid, known)
            assert state is not None
            keyed = prepared if sealing.cipher is None else sealing.cipher.key_delta(prepared)
            plan = planning.plan_delta(sid, keyed, state, {}, expected_version=None, now=_now())
        except EventlogError:
            return None
        return (sealing.seal(plan), plan.result) if plan.appends else None

    return Operation("save_delta", sid, "write", steps, optimistic=True, plan_if_new=plan_if_new)


def save(
    session_id: object,
    data: object,
    *,
    expected_version: object,
    max_entry_bytes: int,
    sealer: Sealer | None = None,
    memo: SnapshotMemo | None = None,
) -> Operation[SaveResult]:
    """Reconcile with an authoritative snapshot (see `Store.save`).

    With `memo` (the store's), entries the last save of the session encoded are
    not checked and hashed again, and the live log that save left is not read
    back while the session's index row is still the one it wrote.
    """
    sid = check_session_id(session_id)
    _check_expected(sid, expected_version)
    known = None if memo is None else memo.encodings(sid)
    prepared, encodings = prepare_snapshot_known(
        sid,
        data,
        max_entry_bytes=max_entry_bytes,
        known=known if known is not None else {},
        remember=memo is not None,
    )
    if memo is not None and encodings is not None:
        memo.keep_encodings(sid, encodings)
    expected = expected_version if isinstance(expected_version, int) else None

    def steps() -> Steps[SaveResult]:
        read = yield from State(sid)
        sealing, state = _write_sealing(sealer, sid, read)
        # Only a plain session's records are remembered: a sealed one's digests are keyed.
        remembers = memo is not None and sealing.cipher is None
        live: Sequence[Record] = []
        extends = False
        if state is not None and read is not None:
            remembered = memo.live(sid, read) if memo is not None and remembers else None
            if remembered is not None:
                live, left_by = remembered
                # The live log a save leaves is its snapshot, in order: when this
                # snapshot took that one whole, it starts with the live log.
                extends = (
                    left_by is not None
                    and left_by is known
                    and encodings is not None
                    and encodings.prefix == len(live)
                )
            else:
                live = yield from LiveRecords(sid, payloads=False)
        keyed = prepared if sealing.cipher is None else sealing.cipher.key_snapshot(prepared)
        plan = planning.plan_reconcile(
            sid, keyed, state, live, expected_version=expected, now=_now(), extends=extends
        )
        if plan.changed:
            yield from Apply(sealing.seal(plan))
        if memo is not None and remembers:
            # Remembered with the whole index row this write leaves: if the
            # transaction does not commit, no row read later equals it (it holds
            # this write's time to the microsecond), so it is never used.
            memo.keep_live(sid, plan.state, planning.live_after(plan, live), left_by=encodings)
        return plan.result

    return Operation("save", sid, "write", steps, optimistic=True)


def delete(session_id: object, *, expected_version: object = None) -> Operation[bool]:
    """Remove a session and every record of it (if at `expected_version`, when given)."""
    sid = check_session_id(session_id)
    _check_expected(sid, expected_version)
    expected = expected_version if isinstance(expected_version, int) else None

    def steps() -> Steps[bool]:
        if expected is not None:
            # Read in the write transaction: the row stays as read until the delete.
            planning.check_expected_version(sid, (yield from State(sid)), expected)
        return (yield from Delete(sid))

    return Operation("delete", sid, "write", steps)


def fork(
    source_id: object, new_id: object, *, at_entry_id: object, sealer: Sealer | None = None
) -> Operation[SessionInfo]:
    """Copy a session (or one branch of it) into a new session.

    With a keyring the new session gets its own data key and every copied
    payload is sealed again for it; without one, a sealed source cannot be read.
    """
    source = check_session_id(source_id, where="source_id")
    target = check_session_id(new_id, where="new_id")
    at_entry = None
    if at_entry_id is not None:
        at_entry = check_entry_id(at_entry_id, session_id=source, where="at_entry_id")

    def steps() -> Steps[SessionInfo]:
        cipher, state = open_state(sealer, _require(source, (yield from State(source))))
        if (yield from State(target)) is not None:
            raise SessionExistsError("the fork's session id is taken", session_id=target)
        live = open_records(cipher, (yield from LiveRecords(source, payloads=True)))
        plan = planning.plan_fork(state, live, target, at_entry_id=at_entry, now=_now())
        if sealer is not None:
            target_cipher, data_key = sealer.new_session(target)
            plan = target_cipher.reseal_copies(plan, data_key=data_key)
        yield from Apply(plan)
        return folding.session_info(plan.state)

    return Operation("fork", target, "write", steps)


def purge(session_id: object) -> Operation[int]:
    """Drop tombstoned and superseded records of a session."""
    sid = check_session_id(session_id)

    def steps() -> Steps[int]:
        state = _require(sid, (yield from State(sid)))
        overhead = 0 if state.data_key is None else SEAL_OVERHEAD
        return (yield from Purge(planning.plan_purge(state, overhead=overhead)))

    return Operation("purge", sid, "write", steps)


def rekey(
    session_id: object, *, sealer: Sealer | None, seal: bool = False
) -> Operation[RekeyOutcome]:
    """Rewrap a sealed session's data key under the keyring's active key.

    Payloads stay as they are (the data key does not change, only what wraps
    it), so this is one row per session. Returns what was done: ``rewrapped``,
    ``current`` (already under the active key), ``plain`` (not sealed) or
    ``missing``. With `seal`, a plain session is sealed instead (``sealed``):
    written again, in one transaction, as its live entries under a new data key
    and the next version; its history before is dropped, as `purge` drops it.

    Raises:
        InvalidConfigError: the store has no keyring.
        DecryptionError: the keyring cannot unwrap the data key.
    """
    sid = check_session_id(session_id)
    if sealer is None:
        raise InvalidConfigError("rekey needs a store opened with a keyring")

    def steps() -> Steps[RekeyOutcome]:
        state = yield from State(sid)
        if state is None:
            return "missing"
        if state.data_key is None:
            if not seal:
                return "plain"
            live = yield from LiveRecords(sid, payloads=True)
            refuse_sealed(sid, live)
            cipher, data_key = sealer.new_session(sid)
            plan = planning.plan_reseal(state, live, now=_now())
            yield from Delete(sid)
            yield from Apply(cipher.reseal_copies(plan, data_key=data_key))
            return "sealed"
        rewrapped = sealer.rewrap(sid, state.data_key)
        if rewrapped is None:
            return "current"
        # The state was read in this write transaction; the compare keeps it honest.
        landed = yield from SetDataKey(sid, state.data_key, rewrapped)
        return "rewrapped" if landed else "missing"

    return Operation("rekey", sid, "write", steps)


# -- reads --------------------------------------------------------------------


def _check_at_version(session_id: str, state: SessionState, at_version: object) -> int:
    if (
        isinstance(at_version, bool)
        or not isinstance(at_version, int)
        or not 1 <= at_version <= state.version
    ):
        raise InvalidInputError(
            f"at_version must be a version the session had (1..{state.version})",
            session_id=session_id,
            where="at_version",
        )
    if at_version < state.history_floor:
        raise HistoryPurgedError(
            "that version's history was purged", session_id=session_id, where="at_version"
        )
    return at_version


def load(
    session_id: object, *, at_version: object, raw: bool, sealer: Sealer | None = None
) -> Operation[SessionData | None]:
    """Fold the log back into the session (optionally as of a version)."""
    sid = check_session_id(session_id)
    if at_version is not None and (isinstance(at_version, bool) or not isinstance(at_version, int)):
        raise InvalidInputError(
            "at_version must be None or an int", session_id=sid, where="at_version"
        )
    if not isinstance(raw, bool):
        raise InvalidInputError("raw must be True or False", session_id=sid, where="raw")

    def steps() -> Steps[SessionData | None]:
        read = yield from State(sid)
        if read is None:
            return None
        cipher, state = open_state(sealer, read)
        if cipher is not None and (at_version is None or at_version == state.version):
            return folding.fold_session(
                state,
                (yield from LiveEntries(sid, raw=raw, opener=cipher.open_rows)),
                leaf_id=state.leaf_id,
                metadata=state.metadata,
                version=state.version,
                updated_at=state.updated_at,
                raw=raw,
            )
        if at_version is None or at_version == state.version:
            # The common load reads only what an Entry holds, straight into entries.
            entries = yield from LiveEntries(sid, raw=raw)
            return folding.fold_session(
                state,
                entries,
                leaf_id=state.leaf_id,
                metadata=state.metadata,
                version=state.version,
                updated_at=state.updated_at,
                raw=raw,
            )
        else:
            version = _check_at_version(sid, state, at_version)
            records = open_records(cipher, (yield from RecordsAt(sid, version)))
            found = yield from VersionRowOf(sid, version)
            if found is None:
                raise HistoryPurgedError(
                    "that version's history was purged", session_id=sid, where="at_version"
                )
            row = found
            if cipher is not None:
                row = msgspec.structs.replace(row, metadata=cipher.open_metadata(row.metadata))
        return folding.fold_session(
            state,
            folding.entries_from_records(records, raw=raw),
            leaf_id=row.leaf_id,
            metadata=row.metadata,
            version=version,
            updated_at=row.created_at,
            raw=raw,
        )

    return Operation("load", sid, "read", steps)


def path(
    session_id: object, *, leaf_id: object, limit: object = None, sealer: Sealer | None = None
) -> Operation[list[Entry]]:
    """The branch from its root to a leaf; with `limit`, only its last `limit` entries."""
    sid = check_session_id(session_id)
    leaf = None if leaf_id is None else check_entry_id(leaf_id, session_id=sid, where="leaf_id")
    if limit is not None:
        return _path_tail(sid, leaf, _check_limit(sid, limit), sealer)

    def steps() -> Steps[list[Entry]]:
        state = _require(sid, (yield from State(sid)))
        cipher = None if state.data_key is None else require_open(sealer, state)
        records = open_records(cipher, (yield from LiveRecords(sid, payloads=True)))
        return folding.walk_path(sid, records, state.leaf_id if leaf is None else leaf)

    return Operation("path", sid, "read", steps)


def _opened(
    sealer: Sealer | None, session_id: str, records: Sequence[Record]
) -> Steps[Sequence[Record] | None]:
    """Records read without the index row, opened: the row is read only for a
    sealed session (None: it was deleted meanwhile).

    Raises:
        DecryptionError: a record is sealed and the store has no keyring.
    """
    if not any(is_sealed(record.payload) for record in records):
        return records
    if sealer is None:
        refuse_sealed(session_id, records)
    state = yield from State(session_id)
    if state is None:
        return None
    if state.data_key is None:
        return records  # a plain session: what looks sealed is damage, decoding says so
    return require_open(sealer, state).open_records(records)


def _path_tail(
    sid: str, leaf: str | None, limit: int, sealer: Sealer | None
) -> Operation[list[Entry]]:
    """The last `limit` entries of a branch, read by walking up from the leaf: O(limit).

    A parent cycle is reported when the walk meets it within the entries it
    reads; one further up is beyond what a tail looks at.
    """

    def steps() -> Steps[list[Entry]]:
        tail = yield from BranchTail(sid, leaf, limit)
        if not tail.exists:
            raise SessionNotFoundError("no such session", session_id=sid)
        if not tail.records and leaf is not None:
            raise InvalidLeafError(
                "the leaf is not a live entry", session_id=sid, entry_id=leaf, where="leaf_id"
            )
        records = yield from _opened(sealer, sid, tail.records)
        if records is None:
            raise SessionNotFoundError("no such session", session_id=sid)
        return folding.tail_entries(sid, records)

    return Operation("path", sid, "read", steps, single_statement=True)


def _encode_cursor(session_id: str) -> str:
    return base64.urlsafe_b64encode(session_id.encode("utf-8")).decode("ascii")


def _decode_cursor(cursor: object) -> str:
    """The session id a cursor of `_encode_cursor` stands for.

    Strict: `urlsafe_b64decode` alone drops characters it does not know, so a
    garbled cursor would silently restart the listing; only the exact text this
    module produces, for a valid session id, is accepted.
    """
    after = None
    if isinstance(cursor, str) and cursor.isascii():
        try:
            decoded = base64.b64decode(cursor, altchars=b"-_", validate=True)
            after = decoded.decode("utf-8")
        except (ValueError, UnicodeError):
            after = None
    if after is None or _encode_cursor(after) != cursor or not _possible_session_id(after):
        raise InvalidInputError("cursor is not one list_sessions returned", where="cursor")
    return after


def _possible_session_id(text: str) -> bool:
    """Whether `text` may be a stored session id (1..255 UTF-8 bytes, no NUL)."""
    try:
        check_session_id(text)
    except InvalidInputError:
        return False
    return True


def _no_id_starts_with(prefix: str) -> bool:
    """Whether no session id can start with `prefix` (NUL, lone surrogate, too long)."""
    return prefix != "" and not _possible_session_id(prefix)


# Rows asked of a backend at most: below SQL's 64-bit integer range (with room for
# the look-ahead row), above any real session count, so a huge limit means "all".
_MAX_FETCH: Final = 2**62


def _aware(moment: datetime) -> bool:
    """Whether a datetime has a UTC offset (a tzinfo may be set and still give none, or fail)."""
    try:
        return moment.utcoffset() is not None
    except Exception:  # the caller's tzinfo failed: not a usable moment
        return False


def list_sessions(
    *, prefix: object, updated_before: object, limit: object, cursor: object
) -> Operation[Page]:
    """One page of sessions in session-id order.

    A prefix no session id can start with (NUL, a lone surrogate, over 255 bytes)
    matches nothing; a cursor this module did not produce is an `InvalidInputError`.
    """
    if prefix is not None and not isinstance(prefix, str):
        raise InvalidInputError("prefix must be a str", where="prefix")
    if updated_before is not None and not (
        isinstance(updated_before, datetime) and _aware(updated_before)
    ):
        raise InvalidInputError(
            "updated_before must be a timezone-aware datetime", where="updated_before"
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError("limit must be a positive int", where="limit")
    after = None if cursor is None else _decode_cursor(cursor)
    fetch = min(limit, _MAX_FETCH)
    matches_nothing = prefix is not None and _no_id_starts_with(prefix)

    def steps() -> Steps[Page]:
        if matches_nothing:
            return Page(items=[], next_cursor=None)
        states = yield from ListStates(
            StateQuery(prefix=prefix, updated_before=updated_before, after=after, limit=fetch + 1)
        )
        items = [folding.session_info(state) for state in states[:fetch]]
        next_cursor = _encode_cursor(items[-1].session_id) if len(states) > fetch else None
        return Page(items=items, next_cursor=next_cursor)

    return Operation("list_sessions", "", "read", steps)


# -- reads for frameworks: info, entry, scan ------------------------------------


def _check_limit(session_id: str, limit: object) -> int:
    """A positive int limit, capped at what a backend can be asked for."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInputError(
            "limit must be None or a positive int", session_id=session_id, where="limit"
        )
    return min(limit, _MAX_FETCH)


def _check_raw(session_id: str, raw: object) -> bool:
    if not isinstance(raw, bool):
        raise InvalidInputError("raw must be True or False", session_id=session_id, where="raw")
    return raw


def _check_id_prefix(session_id: str, id_prefix: object) -> str:
    """A prefix some entry id can start with: "" or the start of a valid id.

    Raises:
        InvalidIdError: not a str, or no entry id can start with it (NUL, a lone
            surrogate, over the id length limit).
    """
    if not isinstance(id_prefix, str):
        raise InvalidIdError("id_prefix must be a str", session_id=session_id, where="id_prefix")
    if id_prefix == "":
        return id_prefix
    try:
        check_entry_id(id_prefix, session_id=session_id, where="id_prefix")
    except InvalidIdError:
        raise InvalidIdError(
            f"id_prefix must be the start of an entry id (no NUL or lone surrogate, "
            f"at most {MAX_ID_BYTES} UTF-8 bytes)",
            session_id=session_id,
            where="id_prefix",
        ) from None
    return id_prefix


def info(session_id: object) -> Operation[SessionInfo | None]:
    """The session's index row alone, or None: no entries are read."""
    sid = check_session_id(session_id)

    def steps() -> Steps[SessionInfo | None]:
        state = yield from State(sid)
        return None if state is None else folding.session_info(state)

    return Operation("info", sid, "read", steps, single_statement=True)


def entry(
    session_id: object, entry_id: object, *, raw: object, sealer: Sealer | None = None
) -> Operation[Entry | None]:
    """The live entry with that id, or None (also for a missing session)."""
    sid = check_session_id(session_id)
    eid = check_entry_id(entry_id, session_id=sid, where="entry_id")
    as_raw = _check_raw(sid, raw)

    def steps() -> Steps[Entry | None]:
        found = yield from LiveRecord(sid, eid)
        if found is None:
            return None
        opened = yield from _opened(sealer, sid, [found])
        if not opened:
            return None
        return folding.record_to_entry(opened[0], raw=as_raw, session_id=sid)

    return Operation("entry", sid, "read", steps, single_statement=True)


def scan(
    session_id: object,
    *,
    id_prefix: object,
    after_id: object,
    limit: object,
    raw: object,
    sealer: Sealer | None = None,
) -> Operation[list[Entry]]:
    """Live entries whose id starts with `id_prefix`, in id order, after `after_id`.

    A missing session has no entries: the answer is `[]`, as for a prefix no
    live id has.
    """
    sid = check_session_id(session_id)
    prefix = _check_id_prefix(sid, id_prefix)
    after = None if after_id is None else check_entry_id(after_id, session_id=sid, where="after_id")
    fetch = None if limit is None else _check_limit(sid, limit)
    as_raw = _check_raw(sid, raw)

    def steps() -> Steps[list[Entry]]:
        records = yield from _opened(
            sealer, sid, (yield from ScanRecords(sid, prefix, after, fetch))
        )
        return [] if records is None else folding.entries_from_records(records, raw=as_raw)

    return Operation("scan", sid, "read", steps, single_statement=True)


# -- the change feed ------------------------------------------------------------


def _check_count(session_id: str, value: object, *, where: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise InvalidInputError(
            f"{where} must be an int >= {least}", session_id=session_id, where=where
        )
    return value


def changes(
    session_id: object,
    *,
    after_version: object,
    limit: object,
    raw: object,
    sealer: Sealer | None = None,
) -> Operation[ChangePage]:
    """The log version by version: the versions after `after_version`, oldest first.

    A missing session, or one not past `after_version` (a reader that is ahead),
    gives an empty page. Below the purge floor the versions' records are gone:
    `HistoryPurgedError`. At most `limit` versions; `next_version` is the next
    page's `after_version`, None when the page reaches the current version.
    """
    sid = check_session_id(session_id)
    after = _check_count(sid, after_version, where="after_version", least=0)
    most = _check_count(sid, limit, where="limit", least=1)
    if not isinstance(raw, bool):
        raise InvalidInputError("raw must be True or False", session_id=sid, where="raw")

    def steps() -> Steps[ChangePage]:
        state = yield from State(sid)
        if state is None:
            return ChangePage(items=[], next_version=None)
        if after < state.history_floor:
            raise HistoryPurgedError(
                f"the history before version {state.history_floor} was purged",
                session_id=sid,
                where="after_version",
            )
        if after >= state.version:
            return ChangePage(items=[], next_version=None)
        until = min(after + most, state.version)
        cipher = None if state.data_key is None else require_open(sealer, state)
        log = open_log(cipher, (yield from LogBetween(sid, after, until, state.next_seq)))
        items = folding.changes_from_slice(sid, log, raw=raw)
        return ChangePage(items=items, next_version=until if until < state.version else None)

    return Operation("changes", sid, "read", steps)
