"""Reopening the same database keeps everything (durability across close/open)."""

from __future__ import annotations

from eventlog.testing.contract.reopen import ReopenContract


class TestReopen(ReopenContract):
    """The shipped `ReopenContract` on the backends of tests/conftest.py."""
