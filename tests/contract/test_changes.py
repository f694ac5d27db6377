"""changes: the log version by version; folding versions 1..v gives load(at_version=v)."""

from __future__ import annotations

from eventlog.testing.contract.changes import ChangesContract
from eventlog.testing.contract.properties import ChangesPropertiesContract


class TestChanges(ChangesContract, ChangesPropertiesContract):
    """The shipped `ChangesContract` and its properties on the backends of tests/conftest.py."""
