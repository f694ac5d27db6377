"""eventlog: agent conversation sessions stored as an append-only event log.

Open a store with `connect(url)`: ``memory://``, ``sqlite:///relative.db``,
``sqlite:////absolute.db`` (the embedded default) or ``postgresql://...``.
"""

from __future__ import annotations

from ._connect import connect, connect_async
from ._core.folding import fold_changes
from .errors import (
    AccessDeniedError,
    CommitOutcomeUnknownError,
    ConcurrencyError,
    ConflictError,
    CorruptionError,
    DecryptionError,
    EventlogError,
    HistoryPurgedError,
    IdConflictError,
    InvalidConfigError,
    InvalidIdError,
    InvalidInputError,
    InvalidLeafError,
    InvalidPayloadError,
    KeyProviderError,
    PayloadTooLargeError,
    SchemaVersionError,
    SessionExistsError,
    SessionNotFoundError,
    StatementCancelledError,
    StoreError,
    StoreUnavailableError,
)
from .keyring import KeyProvider, Keyring, WrappedKey
from .model import (
    UNSET,
    Change,
    ChangePage,
    Entry,
    Page,
    RawJSON,
    SaveResult,
    SessionData,
    SessionDelta,
    SessionInfo,
    UnsetType,
)
from .store import AsyncStore, Store

__version__ = "0.1.0"

__all__ = [
    "UNSET",
    "AccessDeniedError",
    "AsyncStore",
    "Change",
    "ChangePage",
    "CommitOutcomeUnknownError",
    "ConcurrencyError",
    "ConflictError",
    "CorruptionError",
    "DecryptionError",
    "Entry",
    "EventlogError",
    "HistoryPurgedError",
    "IdConflictError",
    "InvalidConfigError",
    "InvalidIdError",
    "InvalidInputError",
    "InvalidLeafError",
    "InvalidPayloadError",
    "KeyProvider",
    "KeyProviderError",
    "Keyring",
    "Page",
    "PayloadTooLargeError",
    "RawJSON",
    "SaveResult",
    "SchemaVersionError",
    "SessionData",
    "SessionDelta",
    "SessionExistsError",
    "SessionInfo",
    "SessionNotFoundError",
    "StatementCancelledError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "UnsetType",
    "WrappedKey",
    "__version__",
    "connect",
    "connect_async",
    "fold_changes",
]
