"""load: folding the log back, exact bytes with raw=True, JSON round-trips (DESIGN.md 1-2)."""

from __future__ import annotations

from eventlog.testing.contract.load import LoadContract


class TestLoad(LoadContract):
    """The shipped `LoadContract` on the backends of tests/conftest.py."""
