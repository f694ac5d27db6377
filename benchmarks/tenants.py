"""What a tenant costs on PostgreSQL: per-turn save_delta and load, with a tenant and without.

    python -m benchmarks.tenants --postgres postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.tenants --postgres ... --baseline /a/checkout/before/tenants

A store opened with a tenant names it in every statement (the extra leading
key column) and sets it in every transaction for row-level security; to pay
for RLS it connects as a role that is neither superuser nor owner (a superuser
skips RLS). The store without a tenant (the default tenant) connects as the
superuser, as the other benchmarks do, and optionally so does another tree
(`--baseline`, e.g. a checkout from before tenants). Each variant runs in
alternating rounds (A B A B ...), in fresh processes on fresh schemas; the
figures are medians of per-call latency, and the ratios compare them with the
store without a tenant measured in the same run. Target: <= 1.1x.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import click

_WORKLOAD = r"""
import json, secrets, statistics, sys, time
from urllib.parse import quote, urlsplit, urlunsplit
import psycopg
import eventlog
from eventlog import Entry, SessionDelta

dsn, mode = sys.argv[1], sys.argv[2]
entries, turns, loads = (int(value) for value in sys.argv[3:6])
tag = secrets.token_hex(4)
schema, role = "bench_tenants_" + tag, "bench_tenants_role_" + tag
password = secrets.token_hex(8)


def in_schema(base):
    return f"{base}{'&' if '?' in base else '?'}options={quote('-csearch_path=' + schema)}"


with psycopg.connect(dsn, autocommit=True) as admin:
    admin.execute(f"CREATE SCHEMA {schema}")
    if mode == "tenant":
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
try:
    with eventlog.connect(in_schema(dsn)):
        pass  # migrated by the superuser
    options = {}
    url = in_schema(dsn)
    if mode == "tenant":
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
            admin.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
            )
        parts = urlsplit(dsn)
        netloc = f"{role}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        url = in_schema(urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))
        options = {"tenant": "acme"}
    text = "x" * 300

    def turn(sid, n):
        return SessionDelta(new_entries=[
            Entry(id=f"{sid}-{n}-u", payload={"role": "user", "text": text}),
            Entry(id=f"{sid}-{n}-a", payload={"role": "assistant", "text": text}),
        ])

    with eventlog.connect(url, **options) as store:
        for n in range(20):  # warm-up: prepared statements, the known-state map
            store.save_delta("warm", turn("warm", n))
        for start in range(0, entries, 500):
            store.save_delta("long", SessionDelta(new_entries=[
                Entry(id=f"e{n}", payload={"n": n, "text": text})
                for n in range(start, min(start + 500, entries))
            ]))
        took = []
        for n in range(turns):
            started = time.perf_counter()
            store.save_delta("long", turn("long", n))
            took.append((time.perf_counter() - started) * 1000)
        for _ in range(5):
            store.load("long")
        loaded = []
        for _ in range(loads):
            started = time.perf_counter()
            data = store.load("long")
            loaded.append((time.perf_counter() - started) * 1000)
        assert data is not None and len(data.entries) == entries + 2 * turns
    print(json.dumps({"save_delta": statistics.median(took), "load": statistics.median(loaded)}))
finally:
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        if mode == "tenant":
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")
"""

_HERE = Path(__file__).resolve().parents[1]


def _measure(
    tree: Path, dsn: str, mode: str, entries: int, turns: int, loads: int
) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _WORKLOAD, dsn, mode, str(entries), str(turns), str(loads)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        raise click.ClickException(f"the workload failed ({mode}, {tree}):\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


@click.command()
@click.option("--postgres", "dsn", required=True, help="A superuser DSN of a test server.")
@click.option("--baseline", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--rounds", default=3, show_default=True)
@click.option("--entries", default=1000, show_default=True, help="The session's size.")
@click.option("--turns", default=300, show_default=True, help="Timed save_delta calls.")
@click.option("--loads", default=50, show_default=True, help="Timed loads of the session.")
def main(
    dsn: str, baseline: Path | None, rounds: int, entries: int, turns: int, loads: int
) -> None:
    """Per-turn save_delta and load: a tenant under RLS against no tenant."""
    variants = {"no tenant": (_HERE, "default"), "tenant + RLS": (_HERE, "tenant")}
    if baseline is not None:
        variants["baseline tree"] = (baseline, "default")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (tree, mode) in variants.items():
            results[name].append(_measure(tree, dsn, mode, entries, turns, loads))
    medians = {
        name: {key: statistics.median(run[key] for run in runs) for key in ("save_delta", "load")}
        for name, runs in results.items()
    }
    click.echo(f"PostgreSQL, a session of {entries} entries, {rounds} rounds; median ms per call")
    click.echo(f"{'':>16} {'save_delta':>12} {'load':>10}")
    for name, figures in medians.items():
        click.echo(f"{name:>16} {figures['save_delta']:>12.3f} {figures['load']:>10.3f}")
    base = medians["no tenant"]
    click.echo("targets:")
    for key in ("save_delta", "load"):
        ratio = medians["tenant + RLS"][key] / base[key]
        verdict = "met" if ratio <= 1.1 else "NOT met"
        click.echo(
            f"  {key} with a tenant (RLS) / without: {ratio:.2f}x (target <= 1.1x) {verdict}"
        )
    if baseline is not None:
        for key in ("save_delta", "load"):
            ratio = medians["tenant + RLS"][key] / medians["baseline tree"][key]
            click.echo(f"  {key} with a tenant (RLS) / the baseline tree: {ratio:.2f}x")


if __name__ == "__main__":
    main()
