"""The contract suite's backends: every backend of tests/conftest.py, and PostgreSQL
connected as the app role (`eventlog migrate --app-role`), so every operation is
shown to work with only the rights that role is granted.

As the app role, two modules are left out to keep CI's time (about 25 s of the
role's 65 s): their tests reach the database only through statements the other
modules run too. `test_validation.py` checks input that is refused before any SQL;
`test_errors.py` checks the errors' types, text and pickling, raised by the same
writes as `test_save_delta.py` and `test_fork_delete_purge.py`.
"""

from __future__ import annotations

import pytest
from conftest import APP_ROLE_BACKEND, BACKENDS, open_backend

from eventlog.testing import backend_fixture

APP_ROLE_LEFT_OUT = frozenset({"test_validation.py", "test_errors.py"})

backend = backend_fixture(open_backend, [*BACKENDS, APP_ROLE_BACKEND])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        as_role = f"[{APP_ROLE_BACKEND}" in item.name
        (left_out if as_role and item.path.name in APP_ROLE_LEFT_OUT else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
