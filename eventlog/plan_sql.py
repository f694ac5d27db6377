"""The SQL that applies a `WritePlan`, shared by the SQLite and Postgres drivers.

Pure: it builds statements and parameter rows; the drivers run them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeAlias

from .fold import WritePlan

__all__ = ["Statement", "plan_statements"]

Statement: TypeAlias = tuple[str, list[tuple[Any, ...]]]


def plan_statements(
    plan: WritePlan, *, paramstyle: str, time: Callable[[datetime], Any]
) -> list[Statement]:
    """The statements (each with its parameter rows) that apply a write plan, in order.

    Args:
        paramstyle: the driver's placeholder, ``?`` (sqlite3) or ``%s`` (psycopg).
        time: how the backend stores a datetime.
    """
    state = plan.state
    sid = state.session_id
    statements: list[Statement] = []
    if plan.removals:
        statements.append(
            (
                "UPDATE entries SET removed_in_version = %s WHERE session_id = %s AND seq = %s",
                [(state.version, sid, seq) for seq in plan.removals],
            )
        )
    if plan.appends:
        statements.append(
            (
                "INSERT INTO entries (session_id, seq, pos, entry_id, parent_id, kind, ts, "
                "payload, digest, added_in_version) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        sid,
                        r.seq,
                        r.pos,
                        r.entry_id,
                        r.parent_id,
                        r.kind,
                        r.timestamp,
                        r.payload,
                        r.digest,
                        r.added_in_version,
                    )
                    for r in plan.appends
                ],
            )
        )
    values = (
        state.version,
        state.leaf_id,
        state.metadata,
        state.next_seq,
        state.entry_count,
        state.removed_count,
        state.bytes,
        state.history_floor,
        time(state.created_at),
        time(state.updated_at),
        state.parent_session_id,
        state.forked_from_entry_id,
        sid,
    )
    if plan.creates:
        statements.append(
            (
                "INSERT INTO sessions (version, leaf_id, metadata, next_seq, entry_count, "
                "removed_count, bytes, history_floor, created_at, updated_at, parent_session_id, "
                "forked_from_entry_id, session_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [values],
            )
        )
    else:
        statements.append(
            (
                "UPDATE sessions SET version = %s, leaf_id = %s, metadata = %s, next_seq = %s, "
                "entry_count = %s, removed_count = %s, bytes = %s, history_floor = %s, "
                "created_at = %s, updated_at = %s, parent_session_id = %s, "
                "forked_from_entry_id = %s WHERE session_id = %s",
                [values],
            )
        )
    statements.append(
        (
            "INSERT INTO session_versions (session_id, version, leaf_id, metadata, created_at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    sid,
                    state.version,
                    state.leaf_id,
                    state.metadata if plan.metadata_changed else None,
                    time(state.updated_at),
                )
            ],
        )
    )
    if paramstyle != "%s":
        statements = [(sql.replace("%s", paramstyle), rows) for sql, rows in statements]
    return statements
