"""save_delta: append, tombstone, idempotency by entry id (DESIGN.md 2, Precise rules)."""

from __future__ import annotations

from eventlog.testing.contract.save_delta import SaveDeltaContract


class TestSaveDelta(SaveDeltaContract):
    """The shipped `SaveDeltaContract` on the backends of tests/conftest.py."""
