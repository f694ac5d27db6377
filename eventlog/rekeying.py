"""Rotating keys: every sealed session's data key rewrapped under the active key.

After `rekey_all` has run with a keyring whose active key is the new one, the
old key can leave the keyring: no stored data key is wrapped by it any more.
"""

from __future__ import annotations

from typing import Final, Protocol

import msgspec

from .model import Page, RekeyOutcome

__all__ = ["RekeyReport", "rekey_all"]

_PAGE: Final = 500


class _Rekeyable(Protocol):
    def list_sessions(self, *, limit: int = 100, cursor: str | None = None) -> Page: ...

    def rekey(self, session_id: str, /, *, seal: bool = False) -> RekeyOutcome: ...


class RekeyReport(msgspec.Struct, frozen=True):
    """What `rekey_all` did: sessions rewrapped, already under the active key, left
    plain, sealed (with ``seal=True``)."""

    rewrapped: int
    current: int
    plain: int
    sealed: int = 0


def rekey_all(store: _Rekeyable, *, seal: bool = False) -> RekeyReport:
    """Rewrap the data key of every sealed session of the store's tenant; with
    `seal`, also seal every plain one (its history before is dropped, as by `purge`).

    One short write per session (its index row), so writers keep going meanwhile;
    a session created during the run is already under the active key.

    Raises:
        InvalidConfigError: the store has no keyring.
        DecryptionError: a session's data key is wrapped by a key the keyring lacks
            (the sessions before it are rewrapped; run it again with that key).
    """
    counts = {"rewrapped": 0, "current": 0, "plain": 0, "sealed": 0, "missing": 0}
    cursor = None
    while True:
        page = store.list_sessions(limit=_PAGE, cursor=cursor)
        for info in page.items:
            counts[store.rekey(info.session_id, seal=seal)] += 1
        cursor = page.next_cursor
        if cursor is None:
            return RekeyReport(
                counts["rewrapped"], counts["current"], counts["plain"], counts["sealed"]
            )
