"""What the watchers' NOTIFY costs a PostgreSQL write: a store with it against one without.

    python -m benchmarks.notify_cost --postgres postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.notify_cost --postgres ... --baseline /a/checkout/without/watch

Every write of a store sends `pg_notify` in its own transaction, and
PostgreSQL serializes the commits of notifying transactions on one lock held
until the commit is flushed. So the figures are the per-turn latency of one
writer and the throughput of 8 writer threads (each its own session), for this
tree's store with `notify=True` (the default) and with `notify=False` (the
baseline), and optionally for another tree (`--baseline`, e.g. a checkout from
before watch), measured in alternating rounds (A B A B ...) in fresh processes
on fresh schemas, and printed as ratios to the baseline.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import click

_WORKLOAD = r"""
import json, secrets, statistics, sys, threading, time
import psycopg
from urllib.parse import quote
import eventlog
from eventlog import Entry, SessionDelta

dsn, notify = sys.argv[1], sys.argv[5]
turns, threads, thread_turns = (int(value) for value in sys.argv[2:5])
options = {} if notify == "default" else {"notify": notify == "on"}
schema = "bench_notify_" + secrets.token_hex(4)
with psycopg.connect(dsn, autocommit=True) as admin:
    admin.execute(f"CREATE SCHEMA {schema}")
try:
    url = f"{dsn}{'&' if '?' in dsn else '?'}options={quote('-csearch_path=' + schema)}"
    text = "x" * 300

    def turn(sid, n):
        return SessionDelta(new_entries=[
            Entry(id=f"{sid}-{n}-u", payload={"role": "user", "text": text}),
            Entry(id=f"{sid}-{n}-a", payload={"role": "assistant", "text": text}),
        ])

    with eventlog.connect(url, max_size=threads + 2, **options) as store:
        for n in range(20):  # warm-up: prepared statements, the known-state map
            store.save_delta("warm", turn("warm", n))
        took = []
        for n in range(turns):
            started = time.perf_counter()
            store.save_delta("one", turn("one", n))
            took.append((time.perf_counter() - started) * 1000)
        barrier = threading.Barrier(threads + 1)

        def work(index):
            sid = f"t{index}"
            store.save_delta(sid, turn(sid, -1))
            barrier.wait()
            for n in range(thread_turns):
                store.save_delta(sid, turn(sid, n))

        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        rate = threads * thread_turns / (time.perf_counter() - started)
    print(json.dumps({"turn_ms": statistics.median(took), "turns_per_s": rate}))
finally:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
"""


def _run(
    tree: Path, notify: str, dsn: str, turns: int, threads: int, thread_turns: int
) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _WORKLOAD, dsn, str(turns), str(threads), str(thread_turns), notify],
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


@click.command()
@click.option("--postgres", "dsn", required=True, help="A server to create schemas on.")
@click.option(
    "--baseline",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Also measure the checkout in this folder (its default store).",
)
@click.option("--rounds", default=3, show_default=True)
@click.option("--turns", default=300, show_default=True)
@click.option("--threads", default=8, show_default=True)
@click.option("--thread-turns", default=100, show_default=True)
def main(
    dsn: str, baseline: Path | None, rounds: int, turns: int, threads: int, thread_turns: int
) -> None:
    """Per-turn latency and N-thread throughput, with and without NOTIFY."""
    here = Path(__file__).resolve().parent.parent
    runs = {"baseline": (here, "off"), "notify": (here, "on")}
    if baseline is not None:
        runs["before-watch"] = (baseline, "default")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (tree, notify) in runs.items():
            results[name].append(_run(tree, notify, dsn, turns, threads, thread_turns))
    summary = {
        name: {
            key: statistics.median(run[key] for run in runs) for key in ("turn_ms", "turns_per_s")
        }
        for name, runs in results.items()
    }
    for name, figures in summary.items():
        line = f"{name}: turn {figures['turn_ms']:.3f} ms, {threads} threads "
        line += f"{figures['turns_per_s']:.0f} turns/s"
        if name != "baseline":
            base = summary["baseline"]
            line += (
                f"  (latency x{figures['turn_ms'] / base['turn_ms']:.2f}, "
                f"throughput x{figures['turns_per_s'] / base['turns_per_s']:.2f})"
            )
        click.echo(line)
    click.echo(json.dumps(results))


if __name__ == "__main__":
    main()
