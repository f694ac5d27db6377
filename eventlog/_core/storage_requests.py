"""The typed seam between operations and drivers (psycopg's `generators.py` shape).

An operation's steps yield one request per storage call, written
``state = yield from State(session_id)``; the request names its result type, so
mypy checks each step's use of the answer. A driver answers a request with
`Request.answer` (or `answer_async`), whose body calls the one `Transaction`
method the request stands for, so mypy checks that call against the
`Transaction` (or `AsyncTransaction`) protocol: no method is dispatched by name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

import msgspec

from ..model import Entry
from .planning import PurgePlan, WritePlan
from .records import BranchWalk, LogSlice, Record, SessionState, StateQuery

if TYPE_CHECKING:
    from .transaction import Transaction
    from .transaction_async import AsyncTransaction

__all__ = [
    "Apply",
    "BranchTail",
    "Delete",
    "LatestRecords",
    "ListStates",
    "LiveEntries",
    "LiveRecord",
    "LiveRecords",
    "LogBetween",
    "Purge",
    "RecordsAt",
    "Request",
    "RowOpener",
    "ScanRecords",
    "SetDataKey",
    "State",
    "StateAndLatest",
    "Steps",
    "VersionRow",
    "VersionRowOf",
]

R = TypeVar("R")

RowOpener: TypeAlias = Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]]
"""Opens sealed payloads in ``(entry_id, parent_id, kind, timestamp, payload)`` rows."""
T = TypeVar("T")


class VersionRow(msgspec.Struct, frozen=True):
    """A session as of one version: its leaf, metadata and when it was written."""

    leaf_id: str | None
    metadata: bytes
    created_at: datetime


class Request(ABC, Generic[R]):
    """One storage call an operation needs, answered with an `R`."""

    __slots__ = ()

    @abstractmethod
    def answer(self, tx: Transaction) -> R:
        """Make the call on a sync transaction."""

    @abstractmethod
    def answer_async(self, tx: AsyncTransaction) -> Awaitable[R]:
        """Make the call on an async transaction."""

    def __iter__(self) -> Generator[Request[Any], Any, R]:
        # A driver sends back what `answer` returned, which is an `R`.
        result: R = yield self
        return result


# Every step yields requests; what it is sent back is typed at `yield from`.
Steps = Generator[Request[Any], Any, T]


@dataclass(frozen=True, slots=True)
class State(Request[SessionState | None]):
    """`Transaction.state`."""

    session_id: str

    def answer(self, tx: Transaction) -> SessionState | None:
        return tx.state(self.session_id)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[SessionState | None]:
        return tx.state(self.session_id)


@dataclass(frozen=True, slots=True)
class LatestRecords(Request[dict[str, Record]]):
    """`Transaction.latest_records`."""

    session_id: str
    entry_ids: Sequence[str]

    def answer(self, tx: Transaction) -> dict[str, Record]:
        return tx.latest_records(self.session_id, self.entry_ids)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[dict[str, Record]]:
        return tx.latest_records(self.session_id, self.entry_ids)


@dataclass(frozen=True, slots=True)
class StateAndLatest(Request[tuple[SessionState | None, dict[str, Record]]]):
    """`Transaction.state_and_latest`."""

    session_id: str
    entry_ids: Sequence[str]

    def answer(self, tx: Transaction) -> tuple[SessionState | None, dict[str, Record]]:
        return tx.state_and_latest(self.session_id, self.entry_ids)

    def answer_async(
        self, tx: AsyncTransaction
    ) -> Awaitable[tuple[SessionState | None, dict[str, Record]]]:
        return tx.state_and_latest(self.session_id, self.entry_ids)


@dataclass(frozen=True, slots=True)
class LiveRecords(Request[list[Record]]):
    """`Transaction.live_records`."""

    session_id: str
    payloads: bool

    def answer(self, tx: Transaction) -> list[Record]:
        return tx.live_records(self.session_id, payloads=self.payloads)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[list[Record]]:
        return tx.live_records(self.session_id, payloads=self.payloads)


@dataclass(frozen=True, slots=True)
class LiveEntries(Request[list[Entry]]):
    """`Transaction.live_entries`."""

    session_id: str
    raw: bool
    opener: RowOpener | None = None

    def answer(self, tx: Transaction) -> list[Entry]:
        return tx.live_entries(self.session_id, raw=self.raw, opener=self.opener)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[list[Entry]]:
        return tx.live_entries(self.session_id, raw=self.raw, opener=self.opener)


@dataclass(frozen=True, slots=True)
class RecordsAt(Request[list[Record]]):
    """`Transaction.records_at`."""

    session_id: str
    version: int

    def answer(self, tx: Transaction) -> list[Record]:
        return tx.records_at(self.session_id, self.version)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[list[Record]]:
        return tx.records_at(self.session_id, self.version)


@dataclass(frozen=True, slots=True)
class VersionRowOf(Request[VersionRow | None]):
    """`Transaction.version_row`."""

    session_id: str
    version: int

    def answer(self, tx: Transaction) -> VersionRow | None:
        return tx.version_row(self.session_id, self.version)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[VersionRow | None]:
        return tx.version_row(self.session_id, self.version)


@dataclass(frozen=True, slots=True)
class Apply(Request[None]):
    """`Transaction.apply`."""

    plan: WritePlan

    def answer(self, tx: Transaction) -> None:
        return tx.apply(self.plan)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[None]:
        return tx.apply(self.plan)


@dataclass(frozen=True, slots=True)
class Delete(Request[bool]):
    """`Transaction.delete`."""

    session_id: str

    def answer(self, tx: Transaction) -> bool:
        return tx.delete(self.session_id)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[bool]:
        return tx.delete(self.session_id)


@dataclass(frozen=True, slots=True)
class Purge(Request[int]):
    """`Transaction.purge`."""

    plan: PurgePlan

    def answer(self, tx: Transaction) -> int:
        return tx.purge(self.plan)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[int]:
        return tx.purge(self.plan)


@dataclass(frozen=True, slots=True)
class SetDataKey(Request[bool]):
    """`Transaction.set_data_key`."""

    session_id: str
    stored: bytes
    data_key: bytes

    def answer(self, tx: Transaction) -> bool:
        return tx.set_data_key(self.session_id, self.stored, self.data_key)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[bool]:
        return tx.set_data_key(self.session_id, self.stored, self.data_key)


@dataclass(frozen=True, slots=True)
class ListStates(Request[list[SessionState]]):
    """`Transaction.list_states`."""

    query: StateQuery

    def answer(self, tx: Transaction) -> list[SessionState]:
        return tx.list_states(self.query)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[list[SessionState]]:
        return tx.list_states(self.query)


# -- reads for frameworks -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveRecord(Request[Record | None]):
    """`Transaction.live_record`."""

    session_id: str
    entry_id: str

    def answer(self, tx: Transaction) -> Record | None:
        return tx.live_record(self.session_id, self.entry_id)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[Record | None]:
        return tx.live_record(self.session_id, self.entry_id)


@dataclass(frozen=True, slots=True)
class BranchTail(Request[BranchWalk]):
    """`Transaction.branch_tail`."""

    session_id: str
    leaf_id: str | None
    limit: int

    def answer(self, tx: Transaction) -> BranchWalk:
        return tx.branch_tail(self.session_id, self.leaf_id, self.limit)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[BranchWalk]:
        return tx.branch_tail(self.session_id, self.leaf_id, self.limit)


@dataclass(frozen=True, slots=True)
class ScanRecords(Request[list[Record]]):
    """`Transaction.scan_records`."""

    session_id: str
    id_prefix: str
    after_id: str | None
    limit: int | None

    def answer(self, tx: Transaction) -> list[Record]:
        return tx.scan_records(self.session_id, self.id_prefix, self.after_id, self.limit)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[list[Record]]:
        return tx.scan_records(self.session_id, self.id_prefix, self.after_id, self.limit)


# -- the change feed ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogBetween(Request[LogSlice]):
    """`Transaction.log_between`."""

    session_id: str
    after: int
    until: int
    next_seq: int

    def answer(self, tx: Transaction) -> LogSlice:
        return tx.log_between(self.session_id, self.after, self.until, next_seq=self.next_seq)

    def answer_async(self, tx: AsyncTransaction) -> Awaitable[LogSlice]:
        return tx.log_between(self.session_id, self.after, self.until, next_seq=self.next_seq)
