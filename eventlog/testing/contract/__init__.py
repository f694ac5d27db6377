"""The contract test classes: one per behaviour area of DESIGN.md, written against `Store` only.

Each class takes the `backend` and `store` fixtures of `eventlog.testing.plugin`.
`StoreContract` gathers them all; `eventlog.testing.contract.properties` adds the
hypothesis-driven ones where hypothesis is installed.
"""

from __future__ import annotations

from .changes import ChangesContract
from .errors import ErrorsContract
from .fork_delete_purge import ForkDeletePurgeContract
from .list_sessions import ListSessionsContract
from .load import LoadContract
from .path import PathContract
from .reads import ReadsContract
from .reopen import ReopenContract
from .save_delta import SaveDeltaContract
from .save_reconcile import SaveReconcileContract
from .validation import ValidationContract
from .versions import VersionsContract
from .watch import WatchContract

__all__ = [
    "ChangesContract",
    "ErrorsContract",
    "ForkDeletePurgeContract",
    "ListSessionsContract",
    "LoadContract",
    "PathContract",
    "ReadsContract",
    "ReopenContract",
    "SaveDeltaContract",
    "SaveReconcileContract",
    "StoreContract",
    "ValidationContract",
    "VersionsContract",
    "WatchContract",
]


class StoreContract(
    ChangesContract,
    ErrorsContract,
    ForkDeletePurgeContract,
    ListSessionsContract,
    LoadContract,
    PathContract,
    ReadsContract,
    ReopenContract,
    SaveDeltaContract,
    SaveReconcileContract,
    ValidationContract,
    VersionsContract,
    WatchContract,
):
    """Every contract test class at once: subclass it as `Test...` to run the whole suite."""
