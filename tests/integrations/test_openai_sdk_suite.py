"""The OpenAI Agents SDK's own session tests, run on EventlogSession (issue 22).

Runs when ``EVENTLOG_OPENAI_TESTS`` names a checkout of openai/openai-agents-python
(its test files are never copied here); otherwise skips, saying so. Each backend
runs the SDK's files in a child pytest with `sdk_shim/eventlog_sdk_shim.py`, which
only swaps the SDK's session constructors; the SDK-internal tests it skips are
listed in `sdk_shim/internal.txt`. Needs pytest-asyncio (the SDK's tests are async).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pgserver
import pytest

SDK_FILES = (
    "tests/memory/test_session.py",
    "tests/memory/test_session_limit.py",
    "tests/extensions/memory/test_sqlalchemy_session.py",
    "tests/extensions/memory/test_async_sqlite_session.py",
)
SHIM = Path(__file__).parent / "sdk_shim"


def _checkout() -> Path:
    where = os.environ.get("EVENTLOG_OPENAI_TESTS")
    if not where:
        pytest.skip("set EVENTLOG_OPENAI_TESTS to a checkout of openai/openai-agents-python")
    root = Path(where)
    missing = [name for name in SDK_FILES if not (root / name).is_file()]
    if missing:
        pytest.skip(f"EVENTLOG_OPENAI_TESTS={where} lacks {', '.join(missing)}")
    for module in ("agents", "pytest_asyncio", "sqlalchemy", "aiosqlite"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the SDK's session tests need {module}")
    return root


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgres"])
def test_the_sdks_session_tests_pass_on_eventlog(backend: str) -> None:
    root = _checkout()
    env = dict(os.environ, SHIM_BACKEND=backend)
    if backend == "postgres":
        env["EVENTLOG_TEST_DSN"] = pgserver.dsn_or_skip()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SHIM), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "eventlog_sdk_shim", "-p", "no:cacheprovider",
         "-o", "asyncio_mode=auto", *SDK_FILES],
        cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 0, f"{backend}: {summary}\n{done.stdout[-4000:]}"
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None and int(passed.group(1)) > 0, summary
