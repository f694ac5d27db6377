"""Child process for the SIGKILL scenario: writes deltas and reports each acknowledged one.

Usage: python sqlite_writer.py DB_PATH FIRST_INDEX
Prints one line per delta the store acknowledged, flushed at once, so the
parent knows exactly what was acknowledged before it killed us.
"""

from __future__ import annotations

import sys

import eventlog
from eventlog import Entry, SessionDelta


def main() -> None:
    path, first = sys.argv[1], int(sys.argv[2])
    store = eventlog.connect(f"sqlite:///{path}")
    index = first
    while True:
        entries = [
            Entry(f"d{index}-{part}", None, "message", None, {"index": index, "pad": "x" * 4000})
            for part in range(5)
        ]
        store.save_delta(f"s{index % 3}", SessionDelta(entries, leaf_id=entries[-1].id))
        sys.stdout.write(f"{index}\n")
        sys.stdout.flush()
        index += 1


if __name__ == "__main__":
    main()
