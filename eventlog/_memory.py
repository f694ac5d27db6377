"""The in-memory backend: the reference the SQL backends are held to.

Records live in plain Python lists, with maps from entry id to the newest
record and from seq to a record's place, so a write costs O(delta) here too.
A write's steps only read; what they would write is staged and applied when
they have all succeeded, so a failed call leaves nothing behind.

Tenants: one memory database (`_Database`) holds a dict of sessions per
tenant. `MemoryStore(tenant=...)` opens a new database; `store.for_tenant(t)`
opens a view of the same database for tenant `t` (what two stores connected
to one SQL database for two tenants are). Each view reads and writes only its
tenant's dict, so tenants are kept apart by key, and closing a view leaves the
database and the other views open.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

import msgspec

from ._core.codec import check_tenant
from ._core.folding import entries_from_records, entries_from_rows
from ._core.operations import Operation
from ._core.planning import PurgePlan, WritePlan
from ._core.records import BranchWalk, LogSlice, Record, SessionState, StateQuery, VersionChange
from ._core.storage_requests import RowOpener
from ._runner.runner import LogStore, Transaction, VersionRow
from ._runner.runner_async import AsyncStoreBase
from ._runner.wakeups import Wakeups
from .errors import StoreUnavailableError
from .keyring import KeyProvider
from .model import Entry

__all__ = ["AsyncMemoryStore", "MemoryStore"]

T = TypeVar("T")


def _by_pos(record: Record) -> int:
    return record.pos


def _added_in(record: Record) -> int:
    return record.added_in_version


class _Session(msgspec.Struct):
    state: SessionState
    records: list[Record]
    versions: dict[int, tuple[str | None, bytes | None, datetime]]
    newest: dict[str, int] = msgspec.field(default_factory=dict)  # entry id -> place
    places: dict[int, int] = msgspec.field(default_factory=dict)  # seq -> place
    # version -> seqs of the records it removed (what the SQL backends' partial
    # index on removed_in_version answers)
    removed_in: dict[int, list[int]] = msgspec.field(default_factory=dict)

    @classmethod
    def of(
        cls,
        state: SessionState,
        records: list[Record],
        versions: dict[int, tuple[str | None, bytes | None, datetime]],
    ) -> _Session:
        session = cls(state, [], versions)
        for record in records:
            session.add(record)
        return session

    def add(self, record: Record) -> None:
        self.newest[record.entry_id] = self.places[record.seq] = len(self.records)
        self.records.append(record)
        if record.removed_in_version is not None:
            self.removed_in.setdefault(record.removed_in_version, []).append(record.seq)

    def apply(self, plan: WritePlan) -> None:
        """Write a plan in place: O(its removals and appends)."""
        state = plan.state
        for seq in plan.removals:
            place = self.places[seq]
            self.records[place] = msgspec.structs.replace(
                self.records[place], removed_in_version=state.version
            )
            self.removed_in.setdefault(state.version, []).append(seq)
        for record in plan.appends:
            self.add(record)
        self.versions[state.version] = (
            state.leaf_id,
            state.metadata if plan.metadata_changed else None,
            state.updated_at,
        )
        self.state = state


class _MemoryTransaction:
    """A `Transaction` over a dict of sessions; writes go to `changes` until commit."""

    def __init__(self, sessions: dict[str, _Session]) -> None:
        self._sessions = sessions
        # Staged writes, applied by `commit`: a whole new session (or None:
        # deleted), or a plan to write in place.
        self.changes: dict[str, _Session | WritePlan | None] = {}

    def _get(self, session_id: str) -> _Session | None:
        if session_id not in self.changes:
            return self._sessions.get(session_id)
        change = self.changes[session_id]
        if isinstance(change, WritePlan):  # read after a staged plan: a copy with it
            old = self._sessions.get(session_id)
            session = _Session.of(
                change.state,
                [] if old is None else list(old.records),
                {} if old is None else dict(old.versions),
            )
            session.apply(change)
            return session
        return change

    def commit(self) -> None:
        """Apply the staged writes to the store's sessions."""
        for session_id, change in self.changes.items():
            if change is None:
                self._sessions.pop(session_id, None)
            elif isinstance(change, WritePlan):
                session = self._sessions.get(session_id)
                if session is None:
                    session = self._sessions[session_id] = _Session(change.state, [], {})
                session.apply(change)
            else:
                self._sessions[session_id] = change

    def state(self, session_id: str) -> SessionState | None:
        session = self._get(session_id)
        return None if session is None else session.state

    def latest_records(self, session_id: str, entry_ids: Sequence[str]) -> dict[str, Record]:
        session = self._get(session_id)
        if session is None:
            return {}
        return {
            entry_id: session.records[session.newest[entry_id]]
            for entry_id in entry_ids
            if entry_id in session.newest
        }

    def state_and_latest(
        self, session_id: str, entry_ids: Sequence[str]
    ) -> tuple[SessionState | None, dict[str, Record]]:
        return self.state(session_id), self.latest_records(session_id, entry_ids)

    def live_records(self, session_id: str, *, payloads: bool) -> list[Record]:
        session = self._get(session_id)
        live = [] if session is None else [r for r in session.records if r.live]
        return sorted(live, key=_by_pos)

    def live_entries(
        self, session_id: str, *, raw: bool, opener: RowOpener | None = None
    ) -> list[Entry]:
        live = self.live_records(session_id, payloads=True)
        if opener is None:
            return entries_from_records(live, raw=raw)
        rows = [(r.entry_id, r.parent_id, r.kind, r.timestamp, r.payload) for r in live]
        return entries_from_rows(opener(rows), raw=raw)

    def records_at(self, session_id: str, version: int) -> list[Record]:
        session = self._get(session_id)
        records = [] if session is None else session.records
        at_version = [
            record
            for record in records
            if record.added_in_version <= version
            and (record.removed_in_version is None or record.removed_in_version > version)
        ]
        return sorted(at_version, key=_by_pos)

    def version_row(self, session_id: str, version: int) -> VersionRow | None:
        session = self._get(session_id)
        if session is None or version not in session.versions:
            return None
        leaf_id, _, created_at = session.versions[version]
        metadata = next(
            meta
            for v, (_, meta, _) in sorted(session.versions.items(), reverse=True)
            if v <= version and meta is not None
        )
        return VersionRow(leaf_id, metadata, created_at)

    def apply(self, plan: WritePlan) -> None:
        if plan.creates and self.changes.get(plan.state.session_id, ...) is None:
            # Created again after a delete in this transaction (`seal`): a fresh session.
            created = _Session(plan.state, [], {})
            created.apply(plan)
            self.changes[plan.state.session_id] = created
        elif plan.state.session_id in self.changes:  # a second write of one session
            staged = self._get(plan.state.session_id)
            assert staged is not None
            staged.apply(plan)
            self.changes[plan.state.session_id] = staged
        else:
            self.changes[plan.state.session_id] = plan

    def delete(self, session_id: str) -> bool:
        existed = self._get(session_id) is not None
        self.changes[session_id] = None
        return existed

    def set_data_key(self, session_id: str, stored: bytes, data_key: bytes) -> bool:
        session = self._get(session_id)
        if session is None or session.state.data_key != stored:
            return False
        state = msgspec.structs.replace(session.state, data_key=data_key)
        self.changes[session_id] = _Session.of(state, session.records, session.versions)
        return True

    def purge(self, plan: PurgePlan) -> int:
        session = self._get(plan.session_id)
        assert session is not None
        kept = [record for record in session.records if record.live]
        leaf_id, _, created_at = session.versions[plan.floor]
        versions = {v: row for v, row in session.versions.items() if v > plan.floor}
        versions[plan.floor] = (leaf_id, plan.metadata, created_at)
        state = msgspec.structs.replace(
            session.state,
            removed_count=plan.removed_count,
            history_floor=plan.floor,
            bytes=sum(len(record.payload) - plan.overhead for record in kept),
        )
        self.changes[plan.session_id] = _Session.of(state, kept, versions)
        return len(session.records) - len(kept)

    def live_record(self, session_id: str, entry_id: str) -> Record | None:
        session = self._get(session_id)
        if session is None or entry_id not in session.newest:
            return None
        record = session.records[session.newest[entry_id]]
        return record if record.live else None

    def branch_tail(self, session_id: str, leaf_id: str | None, limit: int) -> BranchWalk:
        session = self._get(session_id)
        if session is None:
            return BranchWalk(exists=False, records=[])
        walked: list[Record] = []
        current = session.state.leaf_id if leaf_id is None else leaf_id
        while current is not None and len(walked) < limit:
            record = self.live_record(session_id, current)
            if record is None:
                break
            walked.append(record)
            current = record.parent_id
        return BranchWalk(exists=True, records=walked)

    def scan_records(
        self, session_id: str, id_prefix: str, after_id: str | None, limit: int | None
    ) -> list[Record]:
        session = self._get(session_id)
        if session is None:
            return []
        found = sorted(
            (r for r in session.records if r.live and r.entry_id.startswith(id_prefix)),
            key=lambda record: record.entry_id,
        )
        if after_id is not None:
            found = [record for record in found if record.entry_id > after_id]
        return found if limit is None else found[:limit]

    def list_states(self, query: StateQuery) -> list[SessionState]:
        states = [
            session.state
            for session_id, session in sorted(self._sessions.items())
            if (query.prefix is None or session_id.startswith(query.prefix))
            and (query.after is None or session_id > query.after)
            and (query.updated_before is None or session.state.updated_at < query.updated_before)
        ]
        return states[: query.limit]

    # -- the change feed ----------------------------------------------------------

    def log_between(self, session_id: str, after: int, until: int, *, next_seq: int) -> LogSlice:
        session = self._get(session_id)
        if session is None:
            return LogSlice([], [], [])
        # Records are kept in seq order, and added_in_version never falls with seq.
        records = session.records
        start = bisect.bisect_right(records, after, key=_added_in)
        end = bisect.bisect_right(records, until, key=_added_in)
        versions = range(after + 1, until + 1)
        removed = [
            (records[session.places[seq]].entry_id, version)
            for version in versions
            for seq in sorted(session.removed_in.get(version, ()))
        ]
        rows = [VersionChange(v, *session.versions[v]) for v in versions if v in session.versions]
        return LogSlice(records[start:end], removed, rows)


class _Database:
    """One memory database: every tenant's sessions, and the stores open on it."""

    def __init__(self) -> None:
        self.tenants: dict[str, dict[str, _Session]] = {}
        self.lock = threading.RLock()
        # The watch hubs of the stores open on it, each woken by every write
        # (keys name the tenant, so only that tenant's watchers wake).
        self.hubs: weakref.WeakSet[Wakeups] = weakref.WeakSet()


def _tenant_key(tenant: str, session_id: str) -> str:
    """A session's key in the watch hubs: NUL is in no id, so it names one pair."""
    return f"{tenant}\x00{session_id}"


class MemoryStore(LogStore):
    """A store held in process memory; gone when the process ends.

    Args:
        max_entry_bytes: the largest encoded entry accepted.
        tenant: the tenant whose sessions the store reads and writes (None:
            the default tenant ``""``). `for_tenant` opens another tenant's
            view of the same memory.
        keyring: seals new sessions' payloads and metadata and opens sealed
            ones (a `Keyring` or another `KeyProvider`; DESIGN.md section 8).
        snapshot_memo_bytes: payload bytes of the last snapshots saved that the
            store remembers, so that the next `save` of a session does not check
            again what did not change (None: 16 MiB, about five times that in
            memory; 0: remember nothing).
    """

    def __init__(
        self,
        *,
        max_entry_bytes: int | None = None,
        tenant: str | None = None,
        keyring: KeyProvider | None = None,
        snapshot_memo_bytes: int | None = None,
        _database: _Database | None = None,
    ) -> None:
        super().__init__(
            max_entry_bytes=max_entry_bytes,
            keyring=keyring,
            snapshot_memo_bytes=snapshot_memo_bytes,
        )
        self.tenant = check_tenant(tenant)
        self._database = _Database() if _database is None else _database
        self._lock = self._database.lock
        with self._lock:
            self._sessions = self._database.tenants.setdefault(self.tenant, {})
            self._database.hubs.add(self._wakeups)

    def for_tenant(self, tenant: str | None) -> MemoryStore:
        """A store for `tenant` over this store's memory (None: the default tenant).

        Raises:
            InvalidIdError: the tenant id breaks the session id rules.
        """
        return MemoryStore(
            max_entry_bytes=self.max_entry_bytes,
            tenant=tenant,
            keyring=self._keyring,
            snapshot_memo_bytes=self.snapshot_memo_bytes,
            _database=self._database,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tenant={self.tenant!r}>"

    def _watch_key(self, session_id: str) -> str:
        return _tenant_key(self.tenant, session_id)

    @contextmanager
    def _write(self) -> Iterator[Transaction]:
        with self._lock:
            self._check_open()
            tx = _MemoryTransaction(self._sessions)
            yield tx
            tx.commit()
            hubs = list(self._database.hubs)
        for session_id in tx.changes:
            key = _tenant_key(self.tenant, session_id)
            for hub in hubs:
                hub.notify(key)

    @contextmanager
    def _read(self) -> Iterator[Transaction]:
        with self._lock:
            self._check_open()
            yield _MemoryTransaction(self._sessions)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailableError("the store is closed")

    def _close(self) -> None:
        pass

    def record_count(self) -> int:
        """Rows a SQL backend would hold for this tenant's data (sessions, records, versions)."""
        with self._lock:
            return sum(1 + len(s.records) + len(s.versions) for s in self._sessions.values())


class AsyncMemoryStore(AsyncStoreBase):
    """The async twin of `MemoryStore`: operations run inline, as nothing waits on IO."""

    def __init__(
        self,
        *,
        max_entry_bytes: int | None = None,
        tenant: str | None = None,
        keyring: KeyProvider | None = None,
        snapshot_memo_bytes: int | None = None,
        _sync: MemoryStore | None = None,
    ) -> None:
        self.sync = (
            MemoryStore(
                max_entry_bytes=max_entry_bytes,
                tenant=tenant,
                keyring=keyring,
                snapshot_memo_bytes=snapshot_memo_bytes,
            )
            if _sync is None
            else _sync
        )
        self.max_entry_bytes = self.sync.max_entry_bytes
        self.tenant = self.sync.tenant
        self._keyring = self.sync._keyring
        self._sealing = self.sync._sealer
        self._snapshot_memo = self.sync._snapshot_memo

    def for_tenant(self, tenant: str | None) -> AsyncMemoryStore:
        """A store for `tenant` over this store's memory (see `MemoryStore.for_tenant`)."""
        return AsyncMemoryStore(_sync=self.sync.for_tenant(tenant))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} tenant={self.tenant!r}>"

    def _watch_key(self, session_id: str) -> str:
        return self.sync._watch_key(session_id)

    async def _run(self, operation: Operation[T]) -> T:
        return self.sync._run(operation)

    async def close(self) -> None:
        self.sync.close()

    def _watch_hub(self) -> Wakeups:
        return self.sync._watch_hub()

    def record_count(self) -> int:
        """Rows a SQL backend would hold for the same data (sessions, records, versions)."""
        return self.sync.record_count()
