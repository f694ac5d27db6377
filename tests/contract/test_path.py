"""path: the branch from root to leaf; orphans end the walk; cycles are corruption."""

from __future__ import annotations

from eventlog.testing.contract.path import PathContract


class TestPath(PathContract):
    """The shipped `PathContract` on the backends of tests/conftest.py."""
