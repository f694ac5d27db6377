"""Validation of ids and JSON: typed errors, nothing written (DESIGN.md 1, 2 Validation)."""

from __future__ import annotations

from eventlog.testing.contract.validation import ValidationContract


class TestValidation(ValidationContract):
    """The shipped `ValidationContract` on the backends of tests/conftest.py."""
