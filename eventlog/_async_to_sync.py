"""Generate the sync Postgres driver from the async one, as psycopg does.

Run ``python -m eventlog._async_to_sync`` after editing `_postgres_async.py`;
``--check`` exits 1 if `_postgres_sync.py` is not what it would generate (a
test runs the check, so the two cannot drift).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

__all__ = ["generate"]

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "_postgres_async.py"
TARGET = HERE / "_postgres_sync.py"

# Whole-word replacements, applied in order.
_NAMES = [
    ("AsyncPostgresStore", "PostgresStore"),
    ("_AsyncPostgresTransaction", "_PostgresTransaction"),
    ("_AsyncOptimisticTransaction", "_OptimisticTransaction"),
    ("AsyncConnectionPool", "ConnectionPool"),
    ("AsyncConnection", "Connection"),
    ("AsyncLogStore", "LogStore"),
    ("AsyncTransaction", "Transaction"),
    ("AsyncIterator", "Iterator"),
    ("asynccontextmanager", "contextmanager"),
    ("async_engine", "engine"),
]
_SYNTAX = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
]
_HEADER = (
    '"""The sync PostgreSQL driver, GENERATED from `_postgres_async.py` by\n'
    "`python -m eventlog._async_to_sync`: do not edit by hand.\n"
)


def generate(source: str) -> str:
    """The sync module text for the async module text."""
    # Swap the docstring's first line for the header; keep the rest of the text.
    text = _HEADER + source.split("\n", 1)[1]
    for pattern, replacement in _SYNTAX:
        text = re.sub(pattern, replacement, text)
    for name, replacement in _NAMES:
        text = re.sub(rf"\b{name}\b", replacement, text)
    return text


def main(argv: list[str]) -> int:
    expected = generate(SOURCE.read_text("utf-8"))
    if "--check" in argv:
        if TARGET.read_text("utf-8") != expected:
            print(f"{TARGET.name} is out of date: run python -m eventlog._async_to_sync")
            return 1
        return 0
    TARGET.write_text(expected, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
