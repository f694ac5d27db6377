"""watch: the stored changes, then each new version as it commits; ends on delete or close."""

from __future__ import annotations

from eventlog.testing.contract.watch import WatchContract


class TestWatch(WatchContract):
    """The shipped `WatchContract` on the backends of tests/conftest.py."""
