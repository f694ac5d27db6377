"""What sealing costs: per-turn save_delta and load of a long session, sealed against plain.

    python -m benchmarks.encryption --postgres postgresql://postgres@127.0.0.1:5432/test
    python -m benchmarks.encryption --entries 5000 --rounds 3   # SQLite only

A sealed store (opened with a keyring, DESIGN.md section 8) encrypts every
payload and metadata value with AES-256-GCM before it is written and decrypts
every payload a load returns; a plain store does neither. Both run the same
workload on a fresh database, in fresh processes, in alternating rounds
(plain, sealed, plain, ...), on SQLite and on PostgreSQL (when a DSN is given).
The figures are medians of per-call latency; the ratios compare the sealed
store with the plain one measured in the same run. Target: <= 1.25x.

Last, in this process, what the AEAD calls alone cost for as many payloads as a
load opens (330-byte plaintexts, the best of 5 tries): one `decrypt` per
payload for each AEAD `cryptography` offers, and one AES-GCM call over all of
them as a single message. A sealed load cannot be cheaper than the plain load
plus the per-payload calls, so ``1 + calls / plain load`` is the best ratio
per-payload sealing can reach in that run.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import click

TARGET = 1.25

_WORKLOAD = r"""
import json, os, secrets, statistics, sys, time
from urllib.parse import quote
import eventlog
from eventlog import Entry, Keyring, SessionDelta

url, mode = sys.argv[1], sys.argv[2]
entries, turns, loads = (int(value) for value in sys.argv[3:6])
schema = None
if url.startswith("postgresql"):
    import psycopg
    schema = "bench_encryption_" + secrets.token_hex(4)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    dsn = url
    url = f"{url}{'&' if '?' in url else '?'}options={quote('-csearch_path=' + schema)}"
keyring = Keyring({"bench": os.urandom(32)}, active="bench") if mode == "sealed" else None
text = "x" * 300


def turn(sid, n):
    return SessionDelta(new_entries=[
        Entry(id=f"{sid}-{n}-u", payload={"role": "user", "text": text}),
        Entry(id=f"{sid}-{n}-a", payload={"role": "assistant", "text": text}),
    ], metadata={"title": "a conversation", "turns": n})


try:
    with eventlog.connect(url, keyring=keyring) as store:
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
        for _ in range(min(loads, 3)):
            store.load("long")
        loaded = []
        for _ in range(loads):
            started = time.perf_counter()
            data = store.load("long")
            loaded.append((time.perf_counter() - started) * 1000)
        assert data is not None and len(data.entries) == entries + 2 * turns
    print(json.dumps({"save_delta": statistics.median(took), "load": statistics.median(loaded)}))
finally:
    if schema is not None:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
"""

_HERE = Path(__file__).resolve().parents[1]
VARIANTS = ("plain", "sealed")


def measure(url: str, mode: str, entries: int, turns: int, loads: int) -> dict[str, float]:
    """One run of the workload in a fresh process: median ms of save_delta and of load."""
    done = subprocess.run(
        [sys.executable, "-c", _WORKLOAD, url, mode, str(entries), str(turns), str(loads)],
        capture_output=True,
        text=True,
        check=False,
        cwd=_HERE,
        env={"PYTHONPATH": str(_HERE), "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        raise click.ClickException(f"the workload failed ({mode}, {url}):\n{done.stderr}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def run_backend(
    url_for_round: list[str], entries: int, turns: int, loads: int
) -> dict[str, dict[str, float]]:
    """Medians per variant over the rounds (one URL per round and variant, fresh each)."""
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in VARIANTS}
    urls = iter(url_for_round)
    for _ in range(len(url_for_round) // len(VARIANTS)):
        for mode in VARIANTS:
            results[mode].append(measure(next(urls), mode, entries, turns, loads))
    return {
        mode: {key: statistics.median(run[key] for run in runs) for key in ("save_delta", "load")}
        for mode, runs in results.items()
    }


def report(backend: str, medians: dict[str, dict[str, float]]) -> list[str]:
    """The table and the target lines of one backend."""
    lines = [f"{backend}: median ms per call", f"{'':>8} {'save_delta':>12} {'load':>10}"]
    for mode, figures in medians.items():
        lines.append(f"{mode:>8} {figures['save_delta']:>12.3f} {figures['load']:>10.3f}")
    for key in ("save_delta", "load"):
        ratio = medians["sealed"][key] / medians["plain"][key]
        verdict = "met" if ratio <= TARGET else "NOT met"
        lines.append(f"  {key} sealed / plain: {ratio:.2f}x (target <= {TARGET}x) {verdict}")
    return lines


_AEADS = ("AESGCM", "AESOCB3", "ChaCha20Poly1305", "AESGCMSIV")


def _decrypt_all(
    decrypt: Callable[[bytes, bytes, bytes], bytes], sealed: list[tuple[bytes, bytes, bytes]]
) -> Callable[[], list[bytes]]:
    return lambda: [decrypt(nonce, data, ad) for nonce, data, ad in sealed]


def aead_calls(count: int) -> dict[str, float]:
    """Ms for `count` decrypt calls of 330-byte payloads, per AEAD; and for one AES-GCM
    call over all of them (best of 5)."""
    from cryptography.hazmat.primitives.ciphers import aead

    plaintext = b'{"n":1234,"text":"' + b"x" * 300 + b'"}'
    costs: dict[str, float] = {}
    for name in _AEADS:
        cipher = getattr(aead, name)(os.urandom(32))
        sealed = []
        for n in range(count):
            nonce, ad = os.urandom(12), b"eventlog\x001\x00\x00long\x00e\x00e%d\x00message" % n
            sealed.append((nonce, cipher.encrypt(nonce, plaintext, ad), ad))
        costs[name] = min(timeit.repeat(_decrypt_all(cipher.decrypt, sealed), number=1, repeat=5))
    cipher = aead.AESGCM(os.urandom(32))
    nonce = os.urandom(12)
    block = cipher.encrypt(nonce, plaintext * count, b"ad")
    costs["AESGCM, one call"] = min(
        timeit.repeat(lambda: cipher.decrypt(nonce, block, b"ad"), number=1, repeat=5)
    )
    return {name: seconds * 1000 for name, seconds in costs.items()}


def report_calls(count: int, plain_loads: dict[str, float]) -> list[str]:
    """The AEAD lines: ms per `count` payloads, and the best ratio each allows per backend."""
    backends = ", ".join(plain_loads)
    lines = [f"AEAD calls for {count} payloads (ms, best of 5; best ratio on {backends}):"]
    for name, ms in aead_calls(count).items():
        floors = " / ".join(f"{1 + ms / load:.2f}x" for load in plain_loads.values())
        lines.append(f"  {name:>18} {ms:8.3f}  {floors}")
    return lines


@click.command()
@click.option("--postgres", "dsn", default=None, help="A superuser DSN of a test server.")
@click.option("--rounds", default=3, show_default=True)
@click.option("--entries", default=5000, show_default=True, help="The session's size.")
@click.option("--turns", default=300, show_default=True, help="Timed save_delta calls.")
@click.option("--loads", default=20, show_default=True, help="Timed loads of the session.")
def main(dsn: str | None, rounds: int, entries: int, turns: int, loads: int) -> None:
    """Per-turn save_delta and load: sealed (a keyring) against plain, SQLite and PostgreSQL."""
    click.echo(f"a session of {entries} entries, {turns} turns, {loads} loads, {rounds} rounds")
    plain_loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as directory:
        files = [f"sqlite:///{Path(directory) / f'{n}.db'}" for n in range(rounds * len(VARIANTS))]
        medians = run_backend(files, entries, turns, loads)
        plain_loads["SQLite"] = medians["plain"]["load"]
        for line in report("SQLite", medians):
            click.echo(line)
    if dsn is not None:
        medians = run_backend([dsn] * rounds * len(VARIANTS), entries, turns, loads)
        plain_loads["PostgreSQL"] = medians["plain"]["load"]
        for line in report("PostgreSQL", medians):
            click.echo(line)
    for line in report_calls(entries + 2 * turns, plain_loads):
        click.echo(line)


if __name__ == "__main__":
    main()
