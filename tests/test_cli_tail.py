"""`eventlog tail SESSION`: a real process printing entries as another client writes them.

Ctrl-C is a real SIGINT to that process: it ends with status 130 and no
traceback; a deleted session ends it with status 0.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

import eventlog
from eventlog import Entry, SessionDelta

NO_HANG_S = 60.0


class _Tail:
    """`python -m eventlog tail ...` with its output lines read on a thread."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "eventlog", "tail", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._errors: queue.Queue[str | None] = queue.Queue()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self._lines)),
            threading.Thread(target=self._read, args=(self.process.stderr, self._errors)),
        ]
        for reader in self._readers:
            reader.start()
        # The first line on stderr says it is watching: writes from now on are its to print.
        self.started = self._errors.get(timeout=NO_HANG_S)

    @staticmethod
    def _read(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def lines(self, count: int) -> list[str]:
        got = []
        for _ in range(count):
            line = self._lines.get(timeout=NO_HANG_S)
            assert line is not None, f"tail ended early after {got}: {self.stderr()}"
            got.append(line)
        return got

    def stderr(self) -> str:
        """What the process wrote to stderr after its first line, once it has ended."""
        self.process.wait(NO_HANG_S)
        lines = []
        while (line := self._errors.get(timeout=NO_HANG_S)) is not None:
            lines.append(line)
        return "\n".join(lines)

    def wait(self) -> int:
        return self.process.wait(NO_HANG_S)

    def close(self) -> None:
        """Kill the process if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for reader in self._readers:
            reader.join(NO_HANG_S)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tail.db'}"
    url: str = request.getfixturevalue("url")
    return url


@pytest.fixture
def tails() -> Iterator[list[_Tail]]:
    started: list[_Tail] = []
    yield started
    for tail in started:
        tail.close()


def _append(url: str, *entries: Entry, leaf: str | None = None) -> None:
    with eventlog.connect(url) as store:
        store.save_delta("s", SessionDelta(new_entries=list(entries), leaf_id=leaf))


def _msg(entry_id: str, parent: str | None = None) -> Entry:
    return Entry(id=entry_id, parent_id=parent, payload={"role": "user", "content": entry_id})


def _show(url: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", "show", "s", "--url", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=NO_HANG_S,
    )
    return done.stdout.splitlines()


def test_tail_prints_new_entries_like_show_and_ctrl_c_ends_it(
    store_url: str, tails: list[_Tail]
) -> None:
    _append(store_url, _msg("a"), leaf="a")
    tail = _Tail("s", "--url", store_url, "--from-version", "0")
    tails.append(tail)
    assert tail.started == "eventlog: tailing 's' after version 0"
    assert tail.lines(1) == ["a\t-\tmessage: a  ◀ leaf"]
    _append(store_url, _msg("b", "a"), _msg("c", "b"), leaf="c")
    printed = tail.lines(2)
    assert printed == ["b\ta\tmessage: b", "c\tb\tmessage: c  ◀ leaf"]
    assert printed == _show(store_url)[1:]  # what `show` prints for them
    with eventlog.connect(store_url) as store:
        store.save_delta("s", SessionDelta(removed_entry_ids=["b"]))
    assert tail.lines(1) == ["b\t-\t(removed)"]
    tail.process.send_signal(signal.SIGINT)
    assert tail.wait() == 130
    assert "Traceback" not in tail.stderr()


def test_tail_starts_at_the_current_version_and_ends_when_the_session_is_deleted(
    store_url: str, tails: list[_Tail]
) -> None:
    _append(store_url, _msg("old"), leaf="old")
    tail = _Tail("s", "--url", store_url)
    tails.append(tail)
    assert tail.started == "eventlog: tailing 's' after version 1"
    _append(store_url, _msg("new", "old"), leaf="new")
    assert tail.lines(1) == ["new\told\tmessage: new  ◀ leaf"]  # not "old": it was there before
    with eventlog.connect(store_url) as store:
        store.delete("s")
    assert tail.wait() == 0
    assert "was deleted" in tail.stderr()


def test_tail_of_a_missing_session_fails_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tail.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", "tail", "nope", "--url", url],
        capture_output=True,
        text=True,
        timeout=NO_HANG_S,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == "eventlog: no session 'nope'"


def test_tail_refuses_a_negative_from_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tail.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "eventlog", "tail", "s", "--url", url, "--from-version", "-1"],
        capture_output=True,
        text=True,
        timeout=NO_HANG_S,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
