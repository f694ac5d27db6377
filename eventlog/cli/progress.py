"""Progress of an import or export on the terminal, as the formats' progress callback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

__all__ = ["file_progress", "progress_callback"]


def _no_length_hint() -> Iterator[None]:
    """An empty iterable without a length hint (iter(()) has one: 0), for an open-ended bar."""
    yield from ()


@contextmanager
def progress_callback(label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress callback that counts entries on a bar on a terminal, else `None`.

    Piped or redirected, stderr gets nothing (click would still print the label once).
    """
    stderr = sys.stderr
    if not stderr.isatty():
        yield None
        return
    # The total is not known in advance: the bar pulses and counts entries.
    with click.progressbar(
        _no_length_hint(), label=label, file=stderr, show_pos=True, show_eta=False
    ) as bar:
        yield bar.update


@contextmanager
def file_progress(total: int, label: str) -> Iterator[Callable[[object], None] | None]:
    """A callback that advances a bar over `total` files by one per call; `None` off a terminal."""
    stderr = sys.stderr
    if not stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label=label, file=stderr, show_pos=True) as bar:
        yield lambda _file: bar.update(1)
