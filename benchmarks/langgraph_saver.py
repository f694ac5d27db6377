"""LangGraph checkpointers: eventlog's `EventlogSaver` against LangGraph's own savers.

    python -m benchmarks.langgraph_saver [--postgres DSN] [--quick]

A thread of a MessagesState graph is seeded with N messages (10, 100, 1,000),
then each step appends two messages (a question and an answer) and stores the
checkpoint and the node's pending write, as LangGraph does per turn. Measured per
saver in the same run: the median step latency, the bytes the database grows per
step (tables and indexes on PostgreSQL, the file after a WAL checkpoint on
SQLite), and resume, the median ``get_tuple`` of the latest checkpoint by a new
saver at that length. Peers, when installed (the ``bench-peers`` extra):
``PostgresSaver`` (``langgraph-checkpoint-postgres``) and ``SqliteSaver``
(``langgraph-checkpoint-sqlite``).

Targets (issue 16): eventlog's bytes per step at 1,000 messages <= 1.5x at 10;
step latency >= 20x faster than PostgresSaver at 1,000; resume at 1,000 no
slower than PostgresSaver's.

Floors, at 1,000 messages in the same run: the same step on LangGraph's
``InMemorySaver`` (no storage, but it serializes the whole state at each put), a
whole graph turn (``invoke`` of a one-node MessagesState graph that answers
without a network) on `KeepingSaver` (keeps LangGraph's objects: no serde, no
storage; LangGraph's own cost), on InMemorySaver and on each PostgreSQL saver,
a durable one-row commit on the server (a step of a saver that keeps ``put``
and ``put_writes`` durable is two of them), and the raw step: the rows eventlog
stores per step in two plain autocommit INSERTs (`raw_step_ms`).
"""

from __future__ import annotations

import gc
import random
import secrets
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import msgspec
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph

import eventlog
from eventlog.integrations.langgraph import EventlogSaver

__all__ = ["Figures", "measure"]

SIZES = (10, 100, 1000)


@dataclass(frozen=True)
class Figures:
    """One saver at one thread length."""

    step_ms: float
    bytes_per_step: float
    resume_ms: float


_VOCABULARY = (
    "the of and to in is that for it as with was on be by at this an are from or have "
    "not but what all were when we there can which their said if do will each about how "
    "up out them then she many some so these would other into has more her two like him "
    "see time could no make than first been its who now people my made over did down only"
)
_WORDS = tuple(_VOCABULARY.split(" "))


def _text(seed: int, words: int) -> str:
    """Prose-like text that compresses like prose (TOAST compresses repeated text away)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(_WORDS) + str(rng.randrange(100)) for _ in range(words))


def _message(i: int) -> BaseMessage:
    """A question of ~40 words or an answer of ~120 (about 250 and 750 bytes)."""
    if i % 2 == 0:
        return HumanMessage(content=_text(i, 40), id=f"h-{i}")
    return AIMessage(content=_text(i, 120), id=f"a-{i}")


class _Thread:
    """Drives one thread's checkpoints through a saver the way a graph's loop does."""

    def __init__(self, saver: BaseCheckpointSaver[Any], thread_id: str) -> None:
        self.saver = saver
        self.config: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self.messages: list[BaseMessage] = []
        self.version: Any = None
        self.step = -1

    def put(self, new: list[BaseMessage]) -> None:
        self.messages = [*self.messages, *new]
        self.version = self.saver.get_next_version(self.version, None)
        self.step += 1
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": self.messages}
        checkpoint["channel_versions"] = {"messages": self.version}
        checkpoint["versions_seen"] = {"answer": {"messages": self.version}}
        metadata: Any = {"source": "loop", "step": self.step, "parents": {}}
        self.config = self.saver.put(self.config, checkpoint, metadata, {"messages": self.version})
        # The node's write (its answer) is recorded against the checkpoint, as in a run.
        self.saver.put_writes(self.config, [("messages", new[-1:])], str(uuid.uuid4()))


def measure(
    open_saver: Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]],
    storage: Callable[[], int],
    size: int,
    steps: int,
    resumes: int,
) -> Figures:
    """Seed a thread with `size` messages, time `steps` steps and `resumes` resumes."""
    thread_id = f"bench-{size}-{secrets.token_hex(3)}"
    with open_saver() as saver:
        thread = _Thread(saver, thread_id)
        thread.put([_message(i) for i in range(size)])
        base = size
        before = storage()
        timings = []
        for _ in range(steps):
            pair = [_message(base), _message(base + 1)]
            base += 2
            started = time.perf_counter()
            thread.put(pair)
            timings.append(time.perf_counter() - started)
        grown = storage() - before
    latest: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    resume = []
    for _ in range(resumes):
        with open_saver() as fresh:
            # The garbage of what ran before (another saver's 1,000 decoded messages)
            # is collected now, not inside the next saver's timed read.
            gc.collect()
            started = time.perf_counter()
            found = fresh.get_tuple(latest)
            resume.append(time.perf_counter() - started)
            assert found is not None
            assert len(found.checkpoint["channel_values"]["messages"]) == base
    return Figures(
        step_ms=statistics.median(timings) * 1000,
        bytes_per_step=grown / steps,
        resume_ms=statistics.median(resume) * 1000,
    )


_ANSWER = _text(-1, 120)


def _answer(state: MessagesState) -> dict[str, list[BaseMessage]]:
    """A node that answers without a network: one ~750-byte message."""
    return {"messages": [AIMessage(content=_ANSWER, id=f"a-{len(state['messages'])}")]}


def graph_turn_ms(saver: BaseCheckpointSaver[Any], size: int, turns: int) -> float:
    """The median ``invoke`` of a one-node MessagesState graph on a thread of `size` messages."""
    builder = StateGraph(MessagesState)
    builder.add_node("answer", _answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    graph = builder.compile(checkpointer=saver)
    config: Any = {"configurable": {"thread_id": f"graph-{size}-{secrets.token_hex(3)}"}}
    seed: Any = {"messages": [_message(i) for i in range(size - 1)]}
    graph.invoke(seed, config)
    timings = []
    for turn in range(turns):
        question: Any = {"messages": [HumanMessage(content=_text(turn, 40), id=f"q-{turn}")]}
        started = time.perf_counter()
        graph.invoke(question, config)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


class KeepingSaver(BaseCheckpointSaver[Any]):
    """Keeps each thread's checkpoints as the objects LangGraph gave: no serde, no storage.

    Only what a graph turn calls (``get_tuple``, ``put``, ``put_writes``): a graph
    turn on it is LangGraph's own cost, the floor under every saver.
    """

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[str, list[CheckpointTuple]] = {}

    def get_tuple(self, config: Any) -> CheckpointTuple | None:
        held = self.threads.get(str(config["configurable"]["thread_id"]), [])
        wanted = config["configurable"].get("checkpoint_id")
        matching = [t for t in held if not wanted or t.checkpoint["id"] == wanted]
        return matching[-1] if matching else None

    def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        thread = config["configurable"]["thread_id"]
        stored: Any = {
            "configurable": {
                "thread_id": thread,
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint["id"],
            }
        }
        parent = config if config["configurable"].get("checkpoint_id") else None
        held = self.threads.setdefault(thread, [])
        held.append(CheckpointTuple(stored, checkpoint, metadata, parent, []))
        return stored

    def put_writes(self, config: Any, writes: Any, task_id: str, task_path: str = "") -> None:
        found = self.get_tuple(config)
        assert found is not None and found.pending_writes is not None
        found.pending_writes.extend((task_id, channel, value) for channel, value in writes)


def in_memory_step_ms(size: int, steps: int) -> float:
    """The benchmark's step (``put`` and ``put_writes``) on InMemorySaver: no storage."""
    thread = _Thread(InMemorySaver(), "floor")
    thread.put([_message(i) for i in range(size)])
    timings = []
    for i in range(steps):
        pair = [_message(size + 2 * i), _message(size + 2 * i + 1)]
        started = time.perf_counter()
        thread.put(pair)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1000


def durable_commit_ms(dsn: str, schema: str, commits: int) -> float:
    """The median autocommit one-row INSERT on the server: one durable commit."""
    import psycopg

    with psycopg.connect(_with_schema(dsn, schema), autocommit=True) as conn:
        conn.execute("CREATE TABLE commit_floor (x int)")
        timings = []
        for _ in range(commits):
            started = time.perf_counter()
            conn.execute("INSERT INTO commit_floor VALUES (1)")
            timings.append(time.perf_counter() - started)
        conn.execute("DROP TABLE commit_floor")
    return statistics.median(timings) * 1000


def _step_rows(core: Any, n: int, checkpoint_bytes: bytes) -> tuple[list[Any], list[Any]]:
    """Step `n`'s rows as eventlog stores them: (id, payload) of the put's three, the write's."""
    question, answer = _message(2 * n), _message(2 * n + 1)
    put = [
        (f"m:{n}q", msgspec.json.encode(core.encode(question))),
        (f"m:{n}a", msgspec.json.encode(core.encode(answer))),
        (f"c:{n}", checkpoint_bytes),
    ]
    write = [(f"w:{n}", msgspec.json.encode({"value": core.encode([answer])}))]
    return put, write


def _checkpoint_bytes(core: Any) -> bytes:
    encoded = {
        "checkpoint": core.encode(empty_checkpoint()),
        "metadata": core.encode({"source": "loop", "step": 1, "parents": {}}),
        "values": {"messages": [["m:" + "0" * 32, 1000]]},
    }
    return msgspec.json.encode(encoded)


_RAW_TABLES = ("CREATE TABLE raw_step (id text PRIMARY KEY, payload bytea NOT NULL)",)
_RAW_INSERT = "INSERT INTO raw_step SELECT * FROM unnest(%s::text[], %s::bytea[])"
# The same rows in a session's log, with what eventlog keeps beside them: each
# write also moves the session's index row (version, leaf, count) and records
# the version it made.
_KEPT_TABLES = (
    "CREATE TABLE kept_entries (sid text, seq bigint, id text NOT NULL, payload bytea NOT NULL, "
    "PRIMARY KEY (sid, seq), UNIQUE (sid, id))",
    "CREATE TABLE kept_sessions (sid text PRIMARY KEY, version bigint NOT NULL, "
    "leaf text, entries bigint NOT NULL)",
    "CREATE TABLE kept_versions (sid text, version bigint, leaf text, PRIMARY KEY (sid, version))",
    "INSERT INTO kept_sessions VALUES ('s', 0, NULL, 0)",
)
_KEPT_INSERT = (
    "WITH s AS (UPDATE kept_sessions SET version = version + 1, "
    "leaf = (%(ids)s::text[])[cardinality(%(ids)s::text[])], "
    "entries = entries + cardinality(%(ids)s::text[]) WHERE sid = 's' "
    "RETURNING version, leaf, entries), "
    "e AS (INSERT INTO kept_entries SELECT 's', (SELECT entries FROM s) - n + i, id, payload "
    "FROM unnest(%(ids)s::text[], %(payloads)s::bytea[]) WITH ORDINALITY AS a(id, payload, i), "
    "cardinality(%(ids)s::text[]) AS n), "
    "v AS (INSERT INTO kept_versions SELECT 's', version, leaf FROM s) "
    "SELECT version FROM s"
)


def raw_step_ms(dsn: str, schema: str, steps: int, *, kept: bool = False) -> float:
    """The median step of a saver that stores just the rows eventlog's step stores.

    Two autocommit statements, one round trip each, as eventlog's two calls: the
    step's two message entries and its checkpoint entry, then the node's write,
    with the payload bytes eventlog stores for them (the saver's own encoding of
    the same messages and checkpoint). No validation, no planning: the floor of
    any saver that keeps ``put`` and ``put_writes`` durable and stores a step in
    O(delta). With `kept`, each statement also does what eventlog keeps beside
    the rows: it moves the session's index row (version, leaf, count) and
    inserts the version's row, into a log keyed by session and sequence with a
    unique id per session; without, the rows go into one table keyed by id.
    """
    import psycopg

    from eventlog.integrations._langgraph_ops import SaverCore

    core = SaverCore(InMemorySaver().serde, "floor/")
    checkpoint_bytes = _checkpoint_bytes(core)
    tables = _KEPT_TABLES if kept else _RAW_TABLES
    with psycopg.connect(_with_schema(dsn, schema), autocommit=True) as conn:
        for statement in tables:
            conn.execute(statement)

        def store(rows: list[Any]) -> None:
            ids, payloads = [row[0] for row in rows], [row[1] for row in rows]
            if kept:
                conn.execute(_KEPT_INSERT, {"ids": ids, "payloads": payloads}).fetchone()
            else:
                conn.execute(_RAW_INSERT, (ids, payloads))

        timings = []
        for n in range(steps):
            put, write = _step_rows(core, n, checkpoint_bytes)
            started = time.perf_counter()
            store(put)
            store(write)
            timings.append(time.perf_counter() - started)
        for table in ("kept_entries", "kept_sessions", "kept_versions") if kept else ("raw_step",):
            conn.execute(f"DROP TABLE {table}")
    return statistics.median(timings) * 1000


def _floors(
    savers: dict[str, Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]]],
    steps: int,
    commit_ms: float,
    raw_ms: float,
    kept_ms: float,
    results: dict[str, dict[int, Figures]],
) -> str:
    size = SIZES[-1]
    rows = [("InMemorySaver step (put + put_writes)", in_memory_step_ms(size, steps))]
    rows.append(
        ("graph turn on KeepingSaver (no serde)", graph_turn_ms(KeepingSaver(), size, steps))
    )
    rows.append(("graph turn on InMemorySaver", graph_turn_ms(InMemorySaver(), size, steps)))
    for name, open_saver in savers.items():
        with open_saver() as saver:
            rows.append((f"graph turn on {name} (PostgreSQL)", graph_turn_ms(saver, size, steps)))
    rows.append(("durable commit, one-row INSERT", commit_ms))
    rows.append(("raw step: the step's rows in two autocommit INSERTs", raw_ms))
    rows.append(("kept step: the same, each write also moving an index row and a version", kept_ms))
    lines = [f"## Floors at {size:,} messages", "", "| what | ms |", "|---|---:|"]
    lines += [f"| {what} | {ms:.2f} |" for what, ms in rows]
    if "PostgresSaver" in results:
        theirs = results["PostgresSaver"][size].step_ms
        lines += [
            "",
            f"PostgresSaver step / InMemorySaver step: {theirs / rows[0][1]:.1f}x; "
            f"PostgresSaver step / two durable commits: {theirs / (2 * commit_ms):.1f}x; "
            f"PostgresSaver step / raw step: {theirs / raw_ms:.1f}x",
        ]
        ours = results["eventlog"][size].step_ms
        lines.append(
            f"eventlog step / raw step: {ours / raw_ms:.2f}x; / kept step: {ours / kept_ms:.2f}x; "
            f"PostgresSaver step / kept step: {theirs / kept_ms:.1f}x"
        )
    return "\n".join(lines)


def _sqlite_size(path: Path) -> Callable[[], int]:
    def size() -> int:
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        wal = path.with_name(path.name + "-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)

    return size


def _pg_size(dsn: str, schema: str) -> Callable[[], int]:
    import psycopg

    def size() -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
                (schema,),
            ).fetchone()
            assert row is not None
            return int(row[0])

    return size


def _with_schema(dsn: str, schema: str) -> str:
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-csearch_path={schema}')}"


def _eventlog(
    url: str, **options: Any
) -> Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]]:
    store = eventlog.connect(url, **options)  # one store per run, as an application keeps it

    @contextmanager
    def open_saver() -> Iterator[BaseCheckpointSaver[Any]]:
        yield EventlogSaver(store)

    return open_saver


def _sqlite_saver(path: Path) -> Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    @contextmanager
    def open_saver() -> Iterator[BaseCheckpointSaver[Any]]:
        conn = sqlite3.connect(path, check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()

    return open_saver


def _postgres_saver(url: str) -> Callable[[], AbstractContextManager[BaseCheckpointSaver[Any]]]:
    from langgraph.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(url) as saver:
        saver.setup()

    @contextmanager
    def open_saver() -> Iterator[BaseCheckpointSaver[Any]]:
        with PostgresSaver.from_conn_string(url) as saver:
            yield saver

    return open_saver


def _run(
    contenders: dict[str, tuple[Callable[[], Any], Callable[[], int]]],
    steps: int,
    resumes: int,
) -> dict[str, dict[int, Figures]]:
    results: dict[str, dict[int, Figures]] = {name: {} for name in contenders}
    # Sizes outside, savers inside: the savers at one size are measured minutes
    # apart at most, so a shared machine's load drifts less between them.
    for size in SIZES:
        for name, (open_saver, storage) in contenders.items():
            results[name][size] = measure(open_saver, storage, size, steps, resumes)
            click.echo(f"  {name} @ {size}: {results[name][size]}", err=True)
    return results


def _table(backend: str, results: dict[str, dict[int, Figures]]) -> str:
    lines = [f"## {backend}", "", "| saver | messages | step ms | bytes/step | resume ms |"]
    lines.append("|---|---:|---:|---:|---:|")
    for name, by_size in results.items():
        for size, f in by_size.items():
            figures = f"{f.step_ms:.2f} | {f.bytes_per_step:,.0f} | {f.resume_ms:.2f}"
            lines.append(f"| {name} | {size} | {figures} |")
    ours = results["eventlog"]
    flat = ours[1000].bytes_per_step / max(ours[10].bytes_per_step, 1.0)
    lines += ["", f"eventlog bytes/step at 1,000 vs 10: {flat:.2f}x (target <= 1.5x)"]
    if "eventlog notify=False" in results and "PostgresSaver" in results:
        quiet, theirs = results["eventlog notify=False"][1000], results["PostgresSaver"][1000]
        lines.append(
            f"PostgresSaver step / eventlog notify=False step at 1,000: "
            f"{theirs.step_ms / quiet.step_ms:.1f}x; "
            f"resume: {theirs.resume_ms / quiet.resume_ms:.2f}x"
        )
    for peer in (p for p in results if not p.startswith("eventlog")):
        theirs = results[peer][1000]
        lines.append(
            f"{peer} step / eventlog step at 1,000: {theirs.step_ms / ours[1000].step_ms:.1f}x"
            f"{' (target >= 20x)' if peer == 'PostgresSaver' else ''}; resume "
            f"{peer} / eventlog: {theirs.resume_ms / ours[1000].resume_ms:.2f}x"
            f"{' (target >= 1x)' if peer == 'PostgresSaver' else ''}"
        )
    return "\n".join(lines)


@click.command()
@click.option("--postgres", "dsn", default=None, help="PostgreSQL DSN (a schema per saver).")
@click.option("--quick", is_flag=True, help="Fewer steps and resumes.")
def main(dsn: str | None, quick: bool) -> None:
    steps, resumes = (10, 3) if quick else (40, 5)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = folder / "eventlog.db"
        sqlite: dict[str, tuple[Callable[[], Any], Callable[[], int]]] = {
            "eventlog": (_eventlog(f"sqlite:///{ours}"), _sqlite_size(ours)),
        }
        try:
            theirs = folder / "sqlite_saver.db"
            sqlite["SqliteSaver"] = (_sqlite_saver(theirs), _sqlite_size(theirs))
        except ImportError:
            click.echo("peer SqliteSaver: not installed (langgraph-checkpoint-sqlite)", err=True)
        click.echo(_table("SQLite", _run(sqlite, steps, resumes)))
    if dsn is None:
        return
    import psycopg

    tag = secrets.token_hex(3)
    schemas = {
        "eventlog": f"lgbench_{tag}_eventlog",
        "quiet": f"lgbench_{tag}_quiet",
        "PostgresSaver": f"lgbench_{tag}_peer",
    }
    with psycopg.connect(dsn, autocommit=True) as admin:
        for schema in schemas.values():
            admin.execute(f"CREATE SCHEMA {schema}")
        try:
            pg: dict[str, tuple[Callable[[], Any], Callable[[], int]]] = {
                "eventlog": (
                    _eventlog(_with_schema(dsn, schemas["eventlog"])),
                    _pg_size(dsn, schemas["eventlog"]),
                ),
                # PostgreSQL serializes the commits of notifying transactions (README):
                # on a server that others write to, a store that does not NOTIFY
                # shows what that queue costs a step.
                "eventlog notify=False": (
                    _eventlog(_with_schema(dsn, schemas["quiet"]), notify=False),
                    _pg_size(dsn, schemas["quiet"]),
                ),
            }
            try:
                url = _with_schema(dsn, schemas["PostgresSaver"])
                pg["PostgresSaver"] = (
                    _postgres_saver(url),
                    _pg_size(dsn, schemas["PostgresSaver"]),
                )
            except ImportError:
                click.echo("peer PostgresSaver: not installed", err=True)
            click.echo("")
            results = _run(pg, steps, resumes)
            click.echo(_table("PostgreSQL", results))
            commit_ms = durable_commit_ms(dsn, schemas["eventlog"], 200)
            raw_ms = raw_step_ms(dsn, schemas["eventlog"], 200)
            kept_ms = raw_step_ms(dsn, schemas["eventlog"], 200, kept=True)
            savers = {name: open_saver for name, (open_saver, _) in pg.items()}
            click.echo("")
            click.echo(_floors(savers, steps, commit_ms, raw_ms, kept_ms, results))
        finally:
            for schema in schemas.values():
                admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
