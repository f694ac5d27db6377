"""Figures of the fault scenarios, written for `report.py` when EVENTLOG_FAULT_REPORT is set.

Each scenario (and each deliberately broken variant) records one row: what ran,
on which backend, how many operations and injected faults, and what the
checker found. Without the variable, recording does nothing.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPORT_ENV = "EVENTLOG_FAULT_REPORT"
_lock = threading.Lock()


@dataclass
class Figures:
    """One scenario run; fill in the counts while it runs, the duration is measured."""

    scenario: str
    backend: str
    operations: int = 0
    faults: int = 0
    lost: int = 0
    duplicated: int = 0
    duration_s: float = 0.0
    broken_variant: bool = False
    notes: str = ""
    extra: dict[str, int] = field(default_factory=dict)


def record(figures: Figures) -> None:
    """Append one row to the report file (a JSON list), if one was asked for."""
    target = os.environ.get(REPORT_ENV)
    if not target:
        return
    path = Path(target)
    with _lock:
        rows = json.loads(path.read_text()) if path.exists() else []
        rows.append(asdict(figures))
        path.write_text(json.dumps(rows, indent=1))


@contextmanager
def measured(scenario: str, backend: str, *, broken_variant: bool = False) -> Iterator[Figures]:
    """Time a scenario and record its figures when it ends (failed runs too)."""
    figures = Figures(scenario, backend, broken_variant=broken_variant)
    started = time.monotonic()
    try:
        yield figures
    finally:
        figures.duration_s = round(time.monotonic() - started, 2)
        record(figures)
