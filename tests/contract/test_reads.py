"""info, entry, path(limit=) and scan: the reads agent frameworks need."""

from __future__ import annotations

from eventlog.testing.contract.reads import ReadsContract


class TestReads(ReadsContract):
    """The shipped `ReadsContract` on the backends of tests/conftest.py."""
