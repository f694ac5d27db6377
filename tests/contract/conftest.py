"""The contract suite's backends: every backend of tests/conftest.py, and PostgreSQL
connected as the app role (`eventlog migrate --app-role`), so every operation is
shown to work with only the rights that role is granted.

As the app role a representative subset runs, to keep CI's time small: the
whole suite as the role (539 tests) took 65 to 115 s on the shared 2-core machine
(load 5), mostly opening a store per test (0.12 s each). Rights depend on the
statements a test runs, not on its values, so the role runs 216 tests:

- every test function of every module except two, once: the first of its
  parametrizations (the others repeat its statements with other values);
- not `test_validation.py` (input refused before any SQL) nor `test_errors.py`
  (the errors' types, text and pickling, raised by the writes the other modules run).
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
    functions_run: set[tuple[str, str]] = set()
    for item in items:
        if f"[{APP_ROLE_BACKEND}" not in item.name:
            kept.append(item)
            continue
        function = (item.nodeid.split("[", 1)[0], item.path.name)
        if item.path.name in APP_ROLE_LEFT_OUT or function in functions_run:
            left_out.append(item)
        else:
            functions_run.add(function)
            kept.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
