"""Versions, expected_version, at_version and concurrent writers (DESIGN.md 2, Precise rules)."""

from __future__ import annotations

from eventlog.testing.contract.versions import VersionsContract


class TestVersions(VersionsContract):
    """The shipped `VersionsContract` on the backends of tests/conftest.py."""
