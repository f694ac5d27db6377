"""Threads that start at once: the runner of the concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable

# A hang guard, not a speed test.
NO_HANG_SECONDS = 60.0


def run_threads(
    count: int, work: Callable[[int], None], *, timeout: float = NO_HANG_SECONDS
) -> list[BaseException]:
    """Run `work(0)` ... `work(count - 1)` in threads released together by a barrier.

    Returns:
        The exceptions the workers raised (empty when all finished cleanly).

    Raises:
        AssertionError: a worker was still running after `timeout` seconds.
    """
    errors: list[BaseException] = []
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        try:
            work(index)
        except BaseException as error:  # handed back to the test, which decides
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), f"a worker hung past {timeout}s"
    return errors
