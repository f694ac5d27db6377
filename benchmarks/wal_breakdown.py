"""Where a turn's WAL goes on Postgres: eventlog against the raw floor, by record type.

    python -m benchmarks.wal_breakdown --postgres postgresql://postgres@127.0.0.1:5432/test

Both contenders get a session of `--entries` entries, then `--turns` agent and
tool turns each; pg_walinspect (a contrib extension of PostgreSQL 15 and later;
creating it needs a superuser) splits the WAL each wrote by resource manager and
record type: heap inserts, index inserts, the index-row update, commits, full
page images. The per-turn total is what the benchmark's WAL target compares.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import click
import msgspec
import psycopg

from .contenders import Contender, EventlogContender, FloorContender, Target
from .workload import TurnSource, history

__all__ = ["WalLine", "breakdown"]

_STATS_SQL = (
    'SELECT "resource_manager/record_type", count, record_size, fpi_size, combined_size '
    "FROM pg_get_wal_stats(%s, %s, true) WHERE count > 0 ORDER BY combined_size DESC"
)


class WalLine(msgspec.Struct, frozen=True):
    """One record type's share of a contender's WAL, per turn."""

    record_type: str
    records: float
    record_bytes: float
    full_page_bytes: float

    @property
    def total(self) -> float:
        return self.record_bytes + self.full_page_bytes


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
                    found[contender.name] = [
                        WalLine(str(kind), count / turns, size / turns, fpi / turns)
                        for kind, count, size, fpi, _ in admin.execute(
                            _STATS_SQL, (start[0], end[0])
                        )
                    ]
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
