"""A key provider that fails (DESIGN.md section 8): typed errors, the store unchanged.

A `KeyProvider` is someone else's code in front of a KMS. When it raises (the
network is down, access is denied) or answers with something that is not a key,
every call that needed it raises `KeyProviderError` (a `StoreError`), naming only
the type of the provider's exception, never its text or a key; nothing is
written. A wrong or unknown key stays a `DecryptionError`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from eventlog import (
    DecryptionError,
    Entry,
    KeyProviderError,
    Keyring,
    SessionDelta,
    StoreError,
)
from eventlog.keyring import WrappedKey

from .encryption_helpers import connect_sqlite, keyring, raw_sqlite

# The provider's exception text, standing for anything a KMS client might put
# there (a request id, an ARN, a buggy provider's key bytes): it must not reach
# eventlog's message, repr or pickle.
PROVIDER_TEXT = "kms-said-SECRET-3f9a1c"


class FlakyProvider:
    """A keyring behind a switch: while `failure` is set, every call raises it."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring
        self.failure: Exception | None = None
        self.answer: object = None  # when set, wrap/unwrap return it instead

    @property
    def active_key_id(self) -> str:
        self._maybe_fail()
        return self.ring.active_key_id

    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        self._maybe_fail()
        if self.answer is not None:
            return self.answer  # type: ignore[return-value]
        return self.ring.wrap(data_key, context=context)

    def unwrap(self, wrapped: WrappedKey, *, context: bytes) -> bytes:
        self._maybe_fail()
        if self.answer is not None:
            return self.answer  # type: ignore[return-value]
        return self.ring.unwrap(wrapped, context=context)

    def _maybe_fail(self) -> None:
        if self.failure is not None:
            raise self.failure


def _turn(n: int) -> SessionDelta:
    entry = Entry(f"e{n}", None, "message", None, {"text": f"turn {n}"})
    return SessionDelta([entry], leaf_id=entry.id, metadata={"turns": n})


def _dump_tables(path: Path) -> list[tuple[object, ...]]:
    with raw_sqlite(path) as conn:
        rows: list[tuple[object, ...]] = []
        for table in ("sessions", "entries", "session_versions"):
            rows.extend(conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2, 3"))
        return rows


def _assert_typed(error: KeyProviderError, cause: type[Exception]) -> None:
    assert isinstance(error, StoreError) and not isinstance(error, DecryptionError)
    assert error.code == cause.__name__
    assert isinstance(error.__cause__, cause)
    for shown in (str(error), repr(error), pickle.dumps(error).decode("latin-1")):
        assert PROVIDER_TEXT not in shown
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is KeyProviderError and copy.code == error.code
    assert copy.session_id == error.session_id


@pytest.mark.parametrize("cause", [ConnectionError, PermissionError, RuntimeError])
def test_a_new_session_whose_key_cannot_be_wrapped_is_not_written(
    tmp_path: Path, cause: type[Exception]
) -> None:
    provider = FlakyProvider(keyring("k1"))
    path = tmp_path / "s.db"
    with connect_sqlite(path, provider) as store:
        store.save_delta("other", _turn(0))
        before = _dump_tables(path)
        provider.failure = cause(PROVIDER_TEXT)
        with pytest.raises(KeyProviderError) as caught:
            store.save_delta("s1", _turn(0))
        _assert_typed(caught.value, cause)
        assert caught.value.session_id == "s1"
        assert _dump_tables(path) == before
        provider.failure = None
        assert store.load("s1") is None
        store.save_delta("s1", _turn(0))
        data = store.load("s1")
        assert data is not None and data.entries[0].payload == {"text": "turn 0"}


def test_reads_and_writes_of_a_session_whose_key_cannot_be_unwrapped(tmp_path: Path) -> None:
    ring = keyring("k1")
    path = tmp_path / "s.db"
    with connect_sqlite(path, ring) as store:
        store.save_delta("s1", _turn(0))
    before = _dump_tables(path)
    provider = FlakyProvider(ring)
    provider.failure = PermissionError(PROVIDER_TEXT)
    # A fresh store: no data key opened yet, so every call asks the provider.
    with connect_sqlite(path, provider) as store:
        calls: list[tuple[str, object]] = [
            ("load", lambda s: s.load("s1")),
            ("entry", lambda s: s.entry("s1", "e0")),
            ("changes", lambda s: s.changes("s1")),
            ("save_delta", lambda s: s.save_delta("s1", _turn(1))),
            ("rekey", lambda s: s.rekey("s1")),
            ("fork", lambda s: s.fork("s1", "s2")),
        ]
        for name, call in calls:
            with pytest.raises(KeyProviderError) as caught:
                call(store)  # type: ignore[operator]
            _assert_typed(caught.value, PermissionError)
            assert caught.value.session_id == "s1", name
        assert _dump_tables(path) == before
        provider.failure = None
        store.save_delta("s1", _turn(1))
        data = store.load("s1")
        assert data is not None and [e.id for e in data.entries] == ["e0", "e1"]


@pytest.mark.parametrize(
    "answer", ["not bytes", b"short", WrappedKey("", b"x"), ("k1", "not bytes")]
)
def test_a_provider_answering_nonsense_is_a_typed_error(tmp_path: Path, answer: object) -> None:
    ring = keyring("k1")
    path = tmp_path / "s.db"
    with connect_sqlite(path, ring) as store:
        store.save_delta("s1", _turn(0))
    before = _dump_tables(path)
    provider = FlakyProvider(ring)
    provider.answer = answer
    with connect_sqlite(path, provider) as store:
        with pytest.raises(KeyProviderError):
            store.save_delta("s2", _turn(0))  # wrap's answer
        with pytest.raises(KeyProviderError):
            store.load("s1")  # unwrap's answer
    assert _dump_tables(path) == before


def test_a_wrong_key_is_still_a_decryption_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with connect_sqlite(path, keyring("k1")) as store:
        store.save_delta("s1", _turn(0))
    with (
        connect_sqlite(path, FlakyProvider(keyring("k1"))) as store,
        pytest.raises(DecryptionError),
    ):
        store.load("s1")
