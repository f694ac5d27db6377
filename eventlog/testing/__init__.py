"""The contract suite of eventlog, shipped: run it on your own backend or store wrapper.

Every backend of eventlog passes these tests; a new backend, or a wrapper around a
store (caching, metrics, access control), passes them too when it keeps the
contract of DESIGN.md. Importing this package needs pytest; `import eventlog`
does not. The hypothesis-driven tests live in `eventlog.testing.contract.properties`
and need hypothesis as well.

How to run it on your store, in two files::

    # conftest.py
    from pathlib import Path

    from eventlog.testing import Backend, backend_fixture

    pytest_plugins = ["eventlog.testing.plugin"]


    def open_mine(name: str, tmp_path: Path) -> Backend:
        store = MyStore(tmp_path / "data")  # a fresh, empty store per test
        return Backend(
            name,
            store,
            count_rows=store.record_count,  # raw records stored, to see that nothing was written
            reopen_store=lambda: MyStore(tmp_path / "data"),  # optional: same data, new object
        )


    backend = backend_fixture(open_mine, ["mine"])  # more names: one run each

    # test_contract.py
    from eventlog.testing import StoreContract


    class TestMyStore(StoreContract):
        pass

Then `pytest` runs every contract test once per name given to `backend_fixture`.
To run one area only, subclass its class instead (`LoadContract`, `SaveDeltaContract`,
... in `eventlog.testing.contract`). An `AsyncStore` joins through `sync_store`:
`sync_store(lambda: MyAsyncStore.open(...))` is a `Store` that runs each call on a
background event loop. Without an override, the plugin's `backend` is eventlog's
reference in-memory store.
"""

from __future__ import annotations

import pytest

from ._backend import Backend, BackendLike, OpenBackend, backend_fixture
from ._sync_facade import SyncFacade, sync_store
from .threads import run_threads

# pytest rewrites the asserts of test modules only; the shipped tests and their
# checks need it too, so that a failure shows the values compared. It must come
# before the contract modules are imported.
pytest.register_assert_rewrite("eventlog.testing.contract")

from .contract import StoreContract  # noqa: E402

__all__ = [
    "Backend",
    "BackendLike",
    "OpenBackend",
    "StoreContract",
    "SyncFacade",
    "backend_fixture",
    "run_threads",
    "sync_store",
]
