"""Generate each sync module from its hand-written async twin, as psycopg does.

Run ``python -m eventlog._async_to_sync`` after editing a source of `PAIRS`;
``--check`` exits 1 if a generated module is not what it would generate, or
keeps an async word (a test runs the same checks, so the twins cannot drift).

A source's docstring has a paragraph starting "This file is the source of";
the generated module says instead where it comes from.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Final

__all__ = ["PAIRS", "async_words", "generate"]

HERE = Path(__file__).resolve().parent

# (hand-written async source, generated sync module), paths in this package.
PAIRS: Final = [
    ("_postgres/driver_async.py", "_postgres/driver.py"),
    ("_core/transaction_async.py", "_core/transaction.py"),
    ("_core/store_async.py", "_core/store_sync.py"),
    ("_runner/runner_async.py", "_runner/runner.py"),
]

# Syntax first, so what remains of "async" is prose.
_SYNTAX: Final = [
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
]
# Whole-word names, applied in order: every async name a source uses.
_NAMES: Final = [
    ("AsyncPostgresStore", "PostgresStore"),
    ("_AsyncPostgresTransaction", "_PostgresTransaction"),
    ("_AsyncOptimisticTransaction", "_OptimisticTransaction"),
    ("AsyncConnectionPool", "ConnectionPool"),
    ("AsyncConnection", "Connection"),
    ("AsyncCursor", "Cursor"),
    ("AsyncStoreBase", "StoreBase"),
    ("AsyncLogStore", "LogStore"),
    ("AsyncStore", "Store"),
    ("AsyncTransaction", "Transaction"),
    ("AsyncIterator", "Iterator"),
    ("AbstractAsyncContextManager", "AbstractContextManager"),
    ("asynccontextmanager", "contextmanager"),
    ("__aenter__", "__enter__"),
    ("__aexit__", "__exit__"),
    ("answer_async", "answer"),
    ("subscribe_async", "subscribe"),
    ("transaction_async", "transaction"),
    ("store_async", "store_sync"),
    ("runner_async", "runner"),
    ("driver_async", "driver"),
]
# Prose in docstrings and comments.
_PROSE: Final = [
    (r"\bAn async\b", "A sync"),
    (r"\ban async\b", "a sync"),
    (r"\basync\b", "sync"),
    (r"\bcoroutines\b", "functions"),
    (r", for asyncio\b", ""),
]
_SOURCE_NOTE: Final = re.compile(r"This file is the source of .*?(?=\n\n|\n?\"\"\")", re.DOTALL)
# Words no generated module may keep (the generated note names its source file
# and this tool, which hold "async" only inside a longer word).
_ASYNC_WORDS: Final = re.compile(
    r"\basync\b|\bawait\b|Async|asyncio|__a(?:enter|exit)__|This file is the source"
)


def generate(source: str, *, name: str) -> str:
    """The sync module text for the async module text of the file `name`."""
    text = source
    for pattern, replacement in _SYNTAX:
        text = re.sub(pattern, replacement, text)
    for old, new in _NAMES:
        text = re.sub(rf"\b{old}\b", new, text)
    for pattern, replacement in _PROSE:
        text = re.sub(pattern, replacement, text)
    note = f"GENERATED from `{name}` by `python -m eventlog._async_to_sync`:\ndo not edit by hand."
    text, found = _SOURCE_NOTE.subn(note, text, count=1)
    if not found:
        raise ValueError(f"{name}: its docstring lacks the 'This file is the source of' paragraph")
    return text


def async_words(text: str) -> list[str]:
    """The async words left in a generated module's text, each once, in order."""
    return list(dict.fromkeys(match.group() for match in _ASYNC_WORDS.finditer(text)))


def problems() -> list[str]:
    """What is wrong with the generated modules: drift from their source, async words."""
    found = []
    for source, target in PAIRS:
        expected = generate((HERE / source).read_text("utf-8"), name=source)
        if (HERE / target).read_text("utf-8") != expected:
            found.append(f"{target} is out of date: run python -m eventlog._async_to_sync")
        if words := async_words(expected):
            found.append(f"{target} keeps async words {words}: extend the name map")
    return found


def main(argv: list[str]) -> int:
    if "--check" in argv:
        found = problems()
        for problem in found:
            print(problem)
        return 1 if found else 0
    for source, target in PAIRS:
        text = generate((HERE / source).read_text("utf-8"), name=source)
        (HERE / target).write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
