"""save: the snapshot is authoritative, only the difference is written (DESIGN.md 2)."""

from __future__ import annotations

from eventlog.testing.contract.properties import SaveReconcilePropertiesContract
from eventlog.testing.contract.save_reconcile import SaveReconcileContract


class TestSaveReconcile(SaveReconcileContract, SaveReconcilePropertiesContract):
    """The shipped `SaveReconcileContract` on the backends of tests/conftest.py."""
