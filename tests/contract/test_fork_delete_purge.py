"""fork, delete and purge (DESIGN.md 2, Precise rules)."""

from __future__ import annotations

from eventlog.testing.contract.fork_delete_purge import ForkDeletePurgeContract


class TestForkDeletePurge(ForkDeletePurgeContract):
    """The shipped `ForkDeletePurgeContract` on the backends of tests/conftest.py."""
