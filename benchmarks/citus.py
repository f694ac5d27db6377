"""eventlog on a Citus cluster against plain PostgreSQL, measured in one run.

    python -m benchmarks.citus --citus postgresql://postgres@127.0.0.1:9700/test \
        --postgres postgresql://postgres@127.0.0.1:5432/test [--baseline /work/main]

Each variant runs in fresh processes on a fresh schema, in alternating rounds
(plain, citus, plain, citus, ...), so a drift of the machine falls on all of
them alike: `plain` is this tree on plain PostgreSQL, `citus` this tree on the
coordinator with the tables distributed by session_id (Citus's default shard
count), and with `--baseline`, `baseline` is that tree (e.g. main) on plain
PostgreSQL, to see whether this tree moved plain PostgreSQL's figures.

Figures (medians over rounds of each round's median): per-turn `save_delta`
(two entries a turn) on a session of 100 entries; 8 threads each appending to
its own session on one shared store, turns per second; `load` of a session of
5,000 entries; `load(at_version=)` of that session, and on Citus the number of
shard groups its commands reached (from `citus.log_remote_commands`).
Targets (issue 23): per-turn <= 2x plain, throughput >= 0.5x, load <= 1.5x,
load(at_version=) on one shard.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

_WORKLOAD = r"""
import json, re, secrets, statistics, sys, threading, time
from urllib.parse import quote
import psycopg
import eventlog
from eventlog import Entry, SessionDelta
from eventlog.postgres import PostgresStore

dsn, mode = sys.argv[1], sys.argv[2]
turns, loads, threads, thread_turns, big = (int(value) for value in sys.argv[3:8])
schema = "bench_citus_" + secrets.token_hex(4)
text = "x" * 300


def in_schema(extra=""):
    return f"{dsn}?options={quote('-csearch_path=' + schema + extra)}"


def turn(sid, n):
    return SessionDelta(
        new_entries=[
            Entry(id=f"{sid}-{n}-u", payload={"role": "user", "text": text}),
            Entry(id=f"{sid}-{n}-a", parent_id=f"{sid}-{n}-u",
                  payload={"role": "assistant", "text": text}),
        ],
        leaf_id=f"{sid}-{n}-a",
    )


with psycopg.connect(dsn, autocommit=True) as admin:
    admin.execute(f"CREATE SCHEMA {schema}")
try:
    if mode == "citus":
        eventlog.postgres.distribute(in_schema())
    else:
        eventlog.postgres.migrate(in_schema())
    figures = {}
    with eventlog.connect(in_schema(), max_size=threads + 2) as store:
        for n in range(20):  # warm-up: prepared statements, the known-state map
            store.save_delta("warm", turn("warm", n))
        for n in range(50):  # a session of 100 entries
            store.save_delta("talk", turn("talk", n))
        took = []
        for n in range(50, 50 + turns):
            started = time.perf_counter()
            store.save_delta("talk", turn("talk", n))
            took.append(time.perf_counter() - started)
        figures["turn_ms"] = statistics.median(took) * 1000

        errors = []
        barrier = threading.Barrier(threads + 1)

        def writer(index):
            sid = f"thread-{index}"
            try:
                for n in range(10):
                    store.save_delta(sid, turn(sid, n))
            except BaseException as exc:
                errors.append(exc)
            barrier.wait()
            try:
                for n in range(10, 10 + thread_turns):
                    store.save_delta(sid, turn(sid, n))
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        if errors:
            raise errors[0]
        figures["throughput_turns_per_s"] = threads * thread_turns / elapsed

        for start in range(0, big, 500):
            store.save_delta("long", SessionDelta(new_entries=[
                Entry(id=f"e{n}", payload={"n": n, "text": text})
                for n in range(start, min(start + 500, big))
            ]))
        took = []
        for _ in range(loads):
            started = time.perf_counter()
            data = store.load("long")
            took.append(time.perf_counter() - started)
            assert data is not None and len(data.entries) == big
        figures["load_ms"] = statistics.median(took) * 1000
        took = []
        for n in range(loads):
            started = time.perf_counter()
            store.load("long", at_version=1 + n % 3)
            took.append(time.perf_counter() - started)
        figures["load_at_version_ms"] = statistics.median(took) * 1000
    if mode == "citus":
        shards = set()
        with PostgresStore.open(in_schema(" -ccitus.log_remote_commands=on"),
                                min_size=1, max_size=1) as store:
            def collect(notice):
                shards.update(re.findall(r"\b(?:sessions|entries|session_versions)_(\d+)\b",
                                         notice.message_primary or ""))
            with store._pool.connection() as conn:
                conn.add_notice_handler(collect)
            store.load("long", at_version=2)
        # Shard groups (hash ranges) the commands reached: colocated shards of
        # the three tables share one.
        with psycopg.connect(dsn, autocommit=True) as admin:
            groups = admin.execute(
                "SELECT count(DISTINCT shardminvalue) FROM pg_dist_shard WHERE shardid = ANY(%s)",
                ([int(shard) for shard in shards],),
            ).fetchone()[0]
        figures["load_at_version_shards"] = groups
    print(json.dumps(figures))
finally:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
"""

_KEYS = ("turn_ms", "throughput_turns_per_s", "load_ms", "load_at_version_ms")


def _run(tree: Path, dsn: str, mode: str, sizes: tuple[int, ...]) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, "-c", _WORKLOAD, dsn, mode, *map(str, sizes)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tree,
    )
    if done.returncode != 0:
        raise click.ClickException(f"{mode} run failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


@click.command()
@click.option("--citus", "citus_dsn", required=True, help="The Citus coordinator's URL.")
@click.option("--postgres", "postgres_dsn", required=True, help="A plain PostgreSQL's URL.")
@click.option("--baseline", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--rounds", default=3, show_default=True)
@click.option("--turns", default=200, show_default=True)
@click.option("--loads", default=9, show_default=True)
@click.option("--threads", default=8, show_default=True)
@click.option("--thread-turns", default=100, show_default=True)
@click.option("--big", default=5000, show_default=True, help="Entries of the loaded session.")
def main(
    citus_dsn: str,
    postgres_dsn: str,
    baseline: Path | None,
    rounds: int,
    turns: int,
    loads: int,
    threads: int,
    thread_turns: int,
    big: int,
) -> None:
    """Print each variant's figures and the ratios against plain PostgreSQL as JSON."""
    here = Path(__file__).resolve().parent.parent
    sizes = (turns, loads, threads, thread_turns, big)
    variants: dict[str, tuple[Path, str, str]] = {
        "plain": (here, postgres_dsn, "plain"),
        "citus": (here, citus_dsn, "citus"),
    }
    if baseline is not None:
        variants["baseline"] = (baseline, postgres_dsn, "plain")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (tree, dsn, mode) in variants.items():
            runs[name].append(_run(tree, dsn, mode, sizes))
    medians = {
        name: {key: statistics.median(run[key] for run in found) for key in _KEYS}
        for name, found in runs.items()
    }
    plain, citus = medians["plain"], medians["citus"]
    ratios = {
        "citus_turn_vs_plain": citus["turn_ms"] / plain["turn_ms"],
        "citus_throughput_vs_plain": (
            citus["throughput_turns_per_s"] / plain["throughput_turns_per_s"]
        ),
        "citus_load_vs_plain": citus["load_ms"] / plain["load_ms"],
        "citus_load_at_version_vs_plain": citus["load_at_version_ms"] / plain["load_at_version_ms"],
    }
    if "baseline" in medians:
        ratios.update(
            {f"plain_{key}_vs_baseline": plain[key] / medians["baseline"][key] for key in _KEYS}
        )
    shards = sorted({run["load_at_version_shards"] for run in runs["citus"]})
    verdict = {
        "turn <= 2x": ratios["citus_turn_vs_plain"] <= 2.0,
        "throughput >= 0.5x": ratios["citus_throughput_vs_plain"] >= 0.5,
        "load <= 1.5x": ratios["citus_load_vs_plain"] <= 1.5,
        "load(at_version=) single-shard": shards == [1],
    }
    report = {
        "medians": medians,
        "ratios": ratios,
        "load_at_version_shards": shards,
        "targets_met": verdict,
        "rounds": runs,
    }
    click.echo(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
