"""The error contract: hierarchy, fields, pickling, no payload text, no driver errors."""

from __future__ import annotations

from eventlog.testing.contract.errors import ErrorsContract
from eventlog.testing.contract.properties import ErrorPropertiesContract


class TestErrors(ErrorsContract, ErrorPropertiesContract):
    """The shipped `ErrorsContract` on the backends of tests/conftest.py."""
