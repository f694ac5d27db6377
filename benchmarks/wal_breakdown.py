"""Where a turn's WAL goes on Postgres: eventlog against the raw floor, by record type.

    python -m benchmarks.wal_breakdown --postgres postgresql://postgres@127.0.0.1:5432/test

Both contenders get a session of `--entries` entries, then `--turns` agent and
tool turns each; pg_walinspect (a contrib extension of PostgreSQL 15 and later;
creating it needs a superuser) splits the WAL each wrote by resource manager and
record type: heap inserts, index inserts, the index-row update, commits, full
page images. The per-turn total is what the benchmark's WAL target compares.
Only the contender's own relations and transactions count, so other clients of
the server do not disturb the figures.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import click
import msgspec
import psycopg

from .contenders import Contender, EventlogContender, FloorContender, Target
from .workload import TurnSource, history

__all__ = ["WalLine", "breakdown", "has_walinspect", "schema_wal"]

# The WAL of one schema alone, so other clients of the server do not count: the
# records that touch its relations (by relfilenode), and every record of the
# transactions that wrote them (commits, TOAST rows in pg_toast).
_SCHEMA_WAL_SQL = r"""
WITH ours AS (
    SELECT pg_relation_filenode(c.oid) AS node
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND pg_relation_filenode(c.oid) IS NOT NULL
), records AS (
    SELECT * FROM pg_get_wal_records_info(%(start)s, %(end)s)
), touching AS (
    SELECT r.start_lsn, r.xid FROM records r
    WHERE EXISTS (
        SELECT 1 FROM regexp_matches(coalesce(r.block_ref, ''), 'rel \d+/\d+/(\d+)', 'g') AS m(ref)
        WHERE m.ref[1]::oid IN (SELECT node FROM ours)
    )
)
SELECT r.resource_manager || '/' || r.record_type, count(*),
       sum(r.record_length - r.fpi_length), sum(r.fpi_length)
FROM records r
WHERE r.start_lsn IN (SELECT start_lsn FROM touching)
   OR (r.xid <> 0 AND r.xid IN (SELECT xid FROM touching WHERE xid <> 0))
GROUP BY 1
ORDER BY sum(r.record_length) DESC
"""


class WalLine(msgspec.Struct, frozen=True):
    """One record type's share of a contender's WAL, per turn."""

    record_type: str
    records: float
    record_bytes: float
    full_page_bytes: float

    @property
    def total(self) -> float:
        return self.record_bytes + self.full_page_bytes


def has_walinspect(admin: psycopg.Connection[Any]) -> bool:
    """Create pg_walinspect if missing; False where the server cannot (no contrib or superuser)."""
    try:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    except psycopg.Error:
        return False
    return True


def schema_wal(
    admin: psycopg.Connection[Any], schema: str, start: Any, end: Any, *, per: int = 1
) -> list[WalLine]:
    """The WAL one schema's writes made between two LSNs, by record type, divided by `per`.

    Needs pg_walinspect. Counts only the schema's relations and the transactions
    that wrote them, so it holds while other clients use the same server.
    """
    rows = admin.execute(_SCHEMA_WAL_SQL, {"schema": schema, "start": start, "end": end})
    return [
        WalLine(str(kind), count / per, float(size) / per, float(fpi) / per)
        for kind, count, size, fpi in rows
    ]


def _contenders(dsn: str, schema: str) -> Iterator[Contender]:
    target = Target("postgres", dsn, schema)
    yield FloorContender(target)
    yield EventlogContender(target)


def breakdown(dsn: str, *, entries: int, turns: int) -> dict[str, list[WalLine]]:
    """WAL per turn of each contender, by record type, measured one after the other."""
    schema = f"walbd_{secrets.token_hex(4)}"
    found: dict[str, list[WalLine]] = {}
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            for contender in _contenders(dsn, schema):
                try:
                    source = TurnSource("w")
                    contender.fill("wal", history(source, entries))
                    batch = [turn for turn, _ in zip(source.turns(), range(turns), strict=False)]
                    # A checkpoint first, so both start with the same full-page-image debt.
                    admin.execute("CHECKPOINT")
                    start = admin.execute("SELECT pg_current_wal_lsn()").fetchone()
                    for turn in batch:
                        contender.append_turn("wal", turn)
                    end = admin.execute("SELECT pg_current_wal_lsn()").fetchone()
                    assert start is not None and end is not None
                    found[contender.name] = schema_wal(admin, schema, start[0], end[0], per=turns)
                finally:
                    contender.close()
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    return found


def render(found: dict[str, list[WalLine]]) -> str:
    lines: list[str] = []
    for name, rows in found.items():
        total = sum(row.total for row in rows)
        lines.append(f"== {name}: {total:.0f} WAL bytes per turn")
        lines.extend(
            f"  {row.record_type:<24} {row.records:5.1f} records {row.record_bytes:7.0f} B "
            f"+ {row.full_page_bytes:5.0f} B full pages"
            for row in rows
        )
    return "\n".join(lines)


@click.command()
@click.option("--postgres", "dsn", required=True, help="A PostgreSQL server (superuser).")
@click.option("--entries", default=1000, show_default=True, help="Entries before the turns.")
@click.option("--turns", default=200, show_default=True, help="Turns measured per contender.")
def main(dsn: str, entries: int, turns: int) -> None:
    """Print each contender's WAL per turn, by record type."""
    click.echo(render(breakdown(dsn, entries=entries, turns=turns)))


if __name__ == "__main__":
    main()
