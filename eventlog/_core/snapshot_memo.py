"""What a store remembers of the snapshots it saved, so the next `save` of a
session pays for the difference and one encoding of each entry, not for
checking, hashing and reading back every entry again.

Two memories per session, each safe on its own:

- encodings: for each entry id of the last snapshot, the `EncodedEntry` made
  from it and the value its payload bytes decode to (our own copy, which no
  caller holds), also in order (`_core.known_snapshot`: the entries a snapshot
  starts with are taken as known in whole-list passes). An incoming entry
  whose header strings are equal and whose payload encodes to the same bytes
  has the same content and digest; it is allowed JSON exactly when its
  payload equals that decoded value, which is the check `encode_object` makes
  by decoding (so `True` vs `1`, `1.0` vs `1` or key order, which change the
  bytes, are never taken for unchanged). A pure function's memo: it is right
  whatever the database holds.
- the live log: the live records (no payloads) the last `save` left, with the
  index row it wrote. They are used only when the index row read in the next
  write transaction equals that row in every field (version, counts, byte
  total, leaf, metadata, both times to the microsecond), that is, when nobody
  wrote the session since; otherwise the records are read from the database.
  They are the snapshot that save prepared, in order, so a next snapshot that
  takes that one whole (`KnownSnapshot.prefix`) extends them without a compare.

Memory is bounded by the payload bytes remembered (oldest session out first).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Final

import msgspec

from .known_snapshot import KnownSnapshot
from .records import Record, SessionState

__all__ = ["DEFAULT_MEMO_BYTES", "KnownSnapshot", "SnapshotMemo"]

# Payload bytes; the memory they take is about five times that (the encodings
# and a decoded copy of each payload: 7.4 MiB of payloads held 39.5 MiB).
DEFAULT_MEMO_BYTES: Final = 16 * 1024 * 1024


class _Session(msgspec.Struct):
    encodings: KnownSnapshot
    size: int
    state: SessionState | None = None
    live: Sequence[Record] = ()
    left_by: KnownSnapshot | None = None
    """The known snapshot whose save left `live` (None: not known)."""


class SnapshotMemo:
    """Per session: the last snapshot's encodings and the live log it left.

    Thread safe; the known snapshot a caller gets is never changed after.
    """

    def __init__(self, max_bytes: int = DEFAULT_MEMO_BYTES) -> None:
        self._max_bytes = max_bytes
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def encodings(self, session_id: str) -> KnownSnapshot | None:
        with self._lock:
            known = self._sessions.get(session_id)
            return None if known is None else known.encodings

    def keep_encodings(self, session_id: str, encodings: KnownSnapshot) -> None:
        """Remember the encodings of a snapshot just prepared (in place of the last)."""
        size = encodings.size
        with self._lock:
            before = self._sessions.get(session_id)
            self._drop(session_id)
            if size > self._max_bytes:
                return
            kept = _Session(encodings, size)
            if before is not None:
                kept.state, kept.live = before.state, before.live
                # Kept only while it is the snapshot being replaced, which the
                # save in flight started from (a failed save's is dropped here).
                if before.left_by is before.encodings:
                    kept.left_by = before.left_by
            self._sessions[session_id] = kept
            self._bytes += size
            while self._bytes > self._max_bytes:
                self._drop(next(iter(self._sessions)))

    def live(
        self, session_id: str, state: SessionState
    ) -> tuple[Sequence[Record], KnownSnapshot | None] | None:
        """The live records, if `state` (as just read) is the row the last save
        left, with the known snapshot that save prepared (None if not known)."""
        with self._lock:
            known = self._sessions.get(session_id)
            if known is None or known.state is None or known.state != state:
                return None
            return known.live, known.left_by

    def keep_live(
        self,
        session_id: str,
        state: SessionState,
        live: Sequence[Record],
        *,
        left_by: KnownSnapshot | None = None,
    ) -> None:
        """Remember the live records a save left; `left_by`: the known snapshot
        it prepared, kept if it is still the one remembered."""
        with self._lock:
            known = self._sessions.get(session_id)
            if known is not None:
                known.state = state
                known.live = live
                known.left_by = left_by if left_by is known.encodings else None
                self._sessions.move_to_end(session_id)

    def forget(self, session_id: str) -> None:
        with self._lock:
            self._drop(session_id)

    def _drop(self, session_id: str) -> None:
        known = self._sessions.pop(session_id, None)
        if known is not None:
            self._bytes -= known.size
