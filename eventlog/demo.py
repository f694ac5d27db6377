"""A realistic agent session, written turn by turn, for `eventlog demo`.

Four turns saved with `save_delta` (one of them a tool call), an edited
question that branches the tree, and a compaction that drops the old history
through an authoritative `save`: the shapes an agent SDK produces.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from .errors import SessionNotFoundError
from .model import Entry, SaveResult, SessionData, SessionDelta, SessionInfo
from .stats import session_info
from .store import Store

__all__ = ["DEMO_SESSION_ID", "DemoRun", "run_demo", "write_demo_session"]

DEMO_SESSION_ID = "demo"


class _Clock:
    def __init__(self) -> None:
        self._now = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)

    def tick(self) -> str:
        self._now += timedelta(seconds=7)
        return self._now.isoformat().replace("+00:00", "Z")


def _message(entry_id: str, parent: str | None, role: str, text: str, clock: _Clock) -> Entry:
    return Entry(
        entry_id,
        parent,
        "message",
        clock.tick(),
        {"message": {"role": role, "content": [{"type": "text", "text": text}]}},
    )


def write_demo_session(store: Store, session_id: str = DEMO_SESSION_ID) -> list[SaveResult]:
    """Write the demo session (replacing an earlier one); returns each write's result."""
    clock = _Clock()
    store.delete(session_id)
    results = []

    def turn(*entries: Entry, leaf: str) -> None:
        results.append(store.save_delta(session_id, SessionDelta(list(entries), leaf_id=leaf)))

    turn(
        _message("u1", None, "user", "Where do we store agent sessions today?", clock),
        _message(
            "a1", "u1", "assistant", "In one JSON blob per session, rewritten on every turn.", clock
        ),
        leaf="a1",
    )
    turn(
        _message("u2", "a1", "user", "How big do the blobs get?", clock),
        Entry(
            "a2",
            "u2",
            "message",
            clock.tick(),
            {
                "message": {
                    "role": "assistant",
                    "content": [
                        {
                            "type": "tool_call",
                            "name": "sql",
                            "arguments": {"query": "select max(octet_length(data)) from s"},
                        }
                    ],
                }
            },
        ),
        Entry(
            "t2",
            "a2",
            "message",
            clock.tick(),
            {"message": {"role": "tool", "content": [{"type": "text", "text": "4.1 MB"}]}},
        ),
        _message("a3", "t2", "assistant", "The largest is 4.1 MB: every turn rewrites it.", clock),
        leaf="a3",
    )
    # The user edits the second question: a new branch from a1.
    turn(
        _message("u2b", "a1", "user", "What does a turn cost with an append-only log?", clock),
        _message(
            "a4", "u2b", "assistant", "Only the new entries: O(delta), not O(history).", clock
        ),
        leaf="a4",
    )
    turn(
        _message("u3", "a4", "user", "And loading?", clock),
        _message("a5", "u3", "assistant", "Fold the live entries back into the tree.", clock),
        leaf="a5",
    )
    # Compaction: the SDK saves an authoritative snapshot without the old branch.
    current = store.load(session_id)
    assert current is not None
    kept = [entry for entry in current.entries if entry.id in {"u3", "a5"}]
    compaction = Entry(
        "c1",
        "a5",
        "compaction",
        clock.tick(),
        {
            "summary": "Blobs are rewritten per turn; an event log appends only the delta.",
            "firstKeptEntryId": "u3",
            "tokensBefore": 5210,
        },
    )
    results.append(
        store.save(
            session_id,
            SessionData(
                [*kept, compaction], leaf_id="c1", metadata={"title": "Session storage", "turns": 4}
            ),
        )
    )
    turn(
        _message("u4", "c1", "user", "Ship it.", clock),
        _message("a6", "u4", "assistant", "Done: eventlog is the store.", clock),
        leaf="a6",
    )
    return results


class DemoRun(msgspec.Struct, frozen=True):
    """What `run_demo` wrote and read back.

    Attributes:
        writes: each write's result, in order (the fifth is the compaction).
        before_compaction: the session as it was just before the compaction,
            read with ``load(at_version=...)``.
        now: the session as it is after the last write.
        info: its index record (live entries, tombstones, versions, bytes).
    """

    writes: tuple[SaveResult, ...]
    before_compaction: SessionData
    now: SessionData
    info: SessionInfo


def run_demo(store: Store, session_id: str = DEMO_SESSION_ID) -> DemoRun:
    """Write the demo session (replacing an earlier one), then read it back then and now.

    Raises:
        SessionNotFoundError: another client deleted the session while the demo ran.
    """
    writes = write_demo_session(store, session_id)
    # The write before the compaction and the one after it: the history shows through.
    before = store.load(session_id, at_version=writes[-3].version)
    now = store.load(session_id)
    info = session_info(store, session_id)
    if before is None or now is None or info is None:
        raise SessionNotFoundError(
            "the demo session was deleted while it was written", session_id=session_id
        )
    return DemoRun(tuple(writes), before, now, info)
