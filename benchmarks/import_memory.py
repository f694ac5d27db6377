"""Import throughput and peak memory of a large pi session file.

``python -m benchmarks.import_memory --mb 1024`` writes a pi JSONL file of about
that size (a header, then agent turns of ~300 B and ~1.5 KB messages and an
8 KB tool result every fifth turn), imports it into a SQLite store in a child
process, and reports the rate and the child's peak resident memory next to the
file size: memory must stay flat however large the file is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from .workload import TurnSource

_CHILD = """
import sys, time, resource, eventlog
from eventlog.formats import import_file
store = eventlog.connect("sqlite:///" + sys.argv[2])
started = time.perf_counter()
result = import_file(store, "pi", sys.argv[1], session_id="big")
elapsed = time.perf_counter() - started
store.close()
print(result.appended, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_pi_file(path: Path, megabytes: float) -> int:
    """A pi session file of about `megabytes` MB; returns its entry count."""
    limit = int(megabytes * 1024 * 1024)
    source = TurnSource()
    written = 0
    entries = 0
    with path.open("w", encoding="utf-8") as out:
        header = {
            "type": "session",
            "version": 3,
            "id": "big",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "cwd": "/work",
        }
        written += out.write(json.dumps(header) + "\n")
        for turn in source.turns():
            for entry in turn:
                line = {
                    "type": "message",
                    "id": entry.id,
                    "parentId": entry.parent_id,
                    "timestamp": "2026-01-01T00:00:00.000Z",
                    "message": entry.payload,
                }
                written += out.write(json.dumps(line) + "\n")
                entries += 1
            if written >= limit:
                return entries
    raise AssertionError("unreachable")


@click.command()
@click.option("--mb", default=100.0, show_default=True, help="Size of the file to import.")
def main(mb: float) -> None:
    """Import a pi file of --mb MB into SQLite; print entries/s, MB/s and peak RSS."""
    with tempfile.TemporaryDirectory(prefix="eventlog-import-") as directory:
        path = Path(directory) / "big.jsonl"
        entries = write_pi_file(path, mb)
        size = path.stat().st_size
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(Path(directory) / "store.db")],
            capture_output=True,
            text=True,
            check=True,
        )
        appended, elapsed, peak_kb = done.stdout.split()
        baseline = subprocess.run(
            [
                sys.executable,
                "-c",
                "import resource, eventlog.formats; "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    seconds = float(elapsed)
    click.echo(
        f"pi import of {size / 1e6:.0f} MB ({entries} entries, {appended} appended) into "
        f"SQLite: {seconds:.1f} s, {size / 1e6 / seconds:.1f} MB/s, "
        f"{int(appended) / seconds:.0f} entries/s; peak RSS {int(peak_kb) / 1024:.0f} MB "
        f"(the interpreter with eventlog imported: {int(baseline) / 1024:.0f} MB)"
    )


if __name__ == "__main__":
    main()
