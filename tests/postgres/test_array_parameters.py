"""The typed array parameters reach the server as exactly the arrays they hold.

The hot statements write their rows through these arrays, so a wrong length,
a lost NULL or a mangled byte here would be stored; each case is read back
by the server, in binary and text, and compared with what was sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventlog._postgres.arrays import ByteaArray, Int8Array, TextArray, register_array_dumpers


@pytest.fixture(scope="module")
def conn(server_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(server_dsn, autocommit=True) as opened:
        register_array_dumpers(opened)
        yield opened


def _round_trip(conn: psycopg.Connection[Any], value: object, sql_type: str) -> Any:
    row = conn.execute(
        f"SELECT %(v)s::{sql_type}, pg_typeof(%(v)s)::text, cardinality(%(v)s::{sql_type})",
        {"v": value},
    ).fetchone()
    assert row is not None
    assert row[1] == sql_type
    assert row[2] == len(value)  # type: ignore[arg-type]
    return row[0]


_texts = st.lists(
    st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",), min_codepoint=1))),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(items=_texts)
def test_text_arrays_keep_every_item_and_null(
    conn: psycopg.Connection[Any], items: list[str | None]
) -> None:
    assert _round_trip(conn, TextArray(items), "text[]") == items


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.binary(max_size=64), max_size=12))
def test_bytea_arrays_keep_every_byte(conn: psycopg.Connection[Any], items: list[bytes]) -> None:
    assert _round_trip(conn, ByteaArray(items), "bytea[]") == items


@settings(max_examples=60, deadline=None)
@given(items=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=12))
def test_int8_arrays_keep_every_number(conn: psycopg.Connection[Any], items: list[int]) -> None:
    assert _round_trip(conn, Int8Array(items), "bigint[]") == items


def test_an_array_unnests_into_rows_in_order(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute(
        "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bytea[])",
        (Int8Array([3, 1]), TextArray(["é", None]), ByteaArray([b"\x00", b""])),
    ).fetchall()
    assert rows == [(3, "é", b"\x00"), (1, None, b"")]
