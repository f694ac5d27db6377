"""changes: the log version by version; folding versions 1..v gives load(at_version=v)."""

from __future__ import annotations

from eventlog.testing.contract.changes import ChangesContract


class TestChanges(ChangesContract):
    """The shipped `ChangesContract` on the backends of tests/conftest.py."""
