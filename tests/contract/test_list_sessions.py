"""list_sessions: order, prefix, updated_before, paging and the index record."""

from __future__ import annotations

from eventlog.testing.contract.list_sessions import ListSessionsContract


class TestListSessions(ListSessionsContract):
    """The shipped `ListSessionsContract` on the backends of tests/conftest.py."""
