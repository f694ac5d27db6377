"""Reopening the same database keeps everything (durability across close/open)."""

from __future__ import annotations

import pytest

from eventlog import (
    HistoryPurgedError,
    IdConflictError,
    RawJSON,
    SessionData,
    Store,
)

from .._backend import BackendLike
from ._helpers import SID, chain, delta, loaded, msg


def _state(store: Store) -> dict[str, object]:
    sessions = store.list_sessions(limit=1000).items
    return {
        "sessions": sessions,
        "loads": {
            info.session_id: (
                loaded(store, info.session_id, raw=True),
                loaded(store, info.session_id, raw=True).version,
            )
            for info in sessions
        },
        "history": [loaded(store, SID, at_version=v, raw=True) for v in (3, 4, 5)],
        "path": store.path(SID),
    }


def _build(store: Store) -> None:
    store.save_delta(
        SID,
        delta(
            *chain(["a", "b", "c"]),
            msg("raw", "a"),
            leaf="c",
            metadata=RawJSON(b'{ "t" : "\\u0000" }'),
        ),
    )
    store.save_delta(SID, delta(removed=["b"], leaf="c"))
    store.save(
        SID,
        SessionData(entries=[msg("c", "b"), msg("a", None, "edited")], leaf_id="c"),
    )
    store.purge(SID)
    store.save_delta(SID, delta(msg("d", "c"), leaf="d", metadata={"n": -0.0}))
    store.save_delta(SID, delta(removed=["a"]))
    store.fork(SID, "fork", at_entry_id="c")


class ReopenContract:
    """Reopening the same database keeps everything."""

    def test_reopen_keeps_sessions_history_and_metadata(self, backend: BackendLike) -> None:
        _build(backend.store)
        before = _state(backend.store)
        store = backend.reopen()
        assert _state(store) == before
        with pytest.raises(HistoryPurgedError):
            store.load(SID, at_version=2)

    def test_writes_continue_after_reopen(self, backend: BackendLike) -> None:
        first = delta(*chain(["a", "b"]), leaf="b")
        backend.store.save_delta(SID, first)
        backend.store.save_delta(SID, delta(removed=["a"]))
        store = backend.reopen()
        replay = store.save_delta(SID, first)
        assert replay.version == 2
        assert not replay.changed
        assert store.save_delta(SID, delta(msg("c", "b"), leaf="c")).version == 3
        with pytest.raises(IdConflictError):
            store.save_delta(SID, delta(msg("a", None, "changed")))
        assert [entry.id for entry in loaded(store, SID).entries] == ["b", "c"]

    def test_deleted_session_stays_deleted_after_reopen(self, backend: BackendLike) -> None:
        backend.store.save_delta(SID, delta(msg("a")))
        backend.store.save_delta("keep", delta(msg("a")))
        backend.store.delete(SID)
        store = backend.reopen()
        assert store.load(SID) is None
        assert [info.session_id for info in store.list_sessions().items] == ["keep"]
