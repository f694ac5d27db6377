"""The error contract: hierarchy, fields, pickling, no payload text, no driver errors."""

from __future__ import annotations

import builtins
import logging
import pickle
from collections.abc import Callable

import pytest

import eventlog
from eventlog import (
    ConcurrencyError,
    Entry,
    EventlogError,
    HistoryPurgedError,
    IdConflictError,
    InvalidIdError,
    InvalidLeafError,
    InvalidPayloadError,
    PayloadTooLargeError,
    RawJSON,
    SessionData,
    SessionExistsError,
    SessionNotFoundError,
    Store,
)

from .._backend import BackendLike
from ._helpers import (
    SENTINEL,
    SID,
    as_any,
    assert_private,
    chain,
    delta,
    msg,
    unchanged,
)

HIERARCHY = [
    ("InvalidInputError", ("EventlogError", "ValueError")),
    ("InvalidIdError", ("InvalidInputError",)),
    ("InvalidPayloadError", ("InvalidInputError",)),
    ("PayloadTooLargeError", ("InvalidPayloadError",)),
    ("InvalidLeafError", ("InvalidInputError",)),
    ("ConflictError", ("EventlogError",)),
    ("ConcurrencyError", ("ConflictError",)),
    ("IdConflictError", ("ConflictError",)),
    ("SessionExistsError", ("ConflictError",)),
    ("StoreError", ("EventlogError",)),
    ("StoreUnavailableError", ("StoreError",)),
    ("CommitOutcomeUnknownError", ("StoreError",)),
    ("CorruptionError", ("StoreError",)),
    ("SchemaVersionError", ("StoreError",)),
    ("SessionNotFoundError", ("EventlogError", "LookupError")),
    ("HistoryPurgedError", ("EventlogError", "LookupError")),
    ("InvalidConfigError", ("EventlogError", "ValueError")),
]


def _error_class(name: str) -> type[BaseException]:
    found = getattr(eventlog, name, None) or getattr(builtins, name)
    assert isinstance(found, type)
    assert issubclass(found, BaseException)
    return found


def _raise(call: Callable[[], object]) -> EventlogError:
    with pytest.raises(EventlogError) as caught:
        call()
    return caught.value


def _real_errors(store: Store) -> list[EventlogError]:
    """One error of each kind, raised by real calls on a session holding SENTINEL text."""
    private = {"text": SENTINEL, SENTINEL: [SENTINEL]}
    store.save_delta(SID, delta(Entry(id="a", payload=private), leaf="a", metadata=private))
    store.save_delta(SID, delta(Entry(id="b", parent_id="a", payload=private)))
    store.save_delta(SID, delta(removed=["b"]))
    store.purge(SID)
    return [
        _raise(lambda: store.save_delta(SID, delta(Entry(id="a", payload={"t": SENTINEL + "!"})))),
        _raise(lambda: store.save_delta(SID, delta(msg("x")), expected_version=1)),
        _raise(lambda: store.save_delta(SID, delta(Entry(id="n", payload={SENTINEL: [1e999]})))),
        _raise(lambda: store.save_delta(SID, delta(Entry(id="n", payload={SENTINEL: "\ud800"})))),
        _raise(
            lambda: store.save_delta(SID, delta(Entry(id="n", payload={"\ud800" + SENTINEL: 1})))
        ),
        _raise(
            lambda: store.save_delta(
                SID, delta(Entry(id="n", payload=RawJSON(b'{"' + SENTINEL.encode() + b'": NaN}')))
            )
        ),
        _raise(
            lambda: store.save_delta(
                SID, delta(Entry(id="n", payload=RawJSON(b'{"t": "' + SENTINEL.encode() + b'"')))
            )
        ),
        _raise(lambda: store.save_delta(SID, delta(metadata={SENTINEL: float("nan")}))),
        _raise(
            lambda: store.save_delta(SID, delta(Entry(id="n", payload={"t": SENTINEL * 2**20})))
        ),
        _raise(lambda: store.save_delta(SID, delta(leaf="b"))),
        _raise(lambda: store.save(SID, SessionData(entries=[msg("d"), msg("d", text=SENTINEL)]))),
        _raise(lambda: store.fork(SID, SID)),
        _raise(lambda: store.load(SID, at_version=1)),
        _raise(lambda: store.path("missing")),
        _raise(lambda: store.save_delta(SID, delta(Entry(id="z", parent_id="z", payload=private)))),
    ]


class ErrorsContract:
    """The error contract: hierarchy, fields, pickling, no payload text, no driver errors."""

    @pytest.mark.parametrize(("name", "bases"), HIERARCHY, ids=[name for name, _ in HIERARCHY])
    def test_error_hierarchy(self, name: str, bases: tuple[str, ...]) -> None:
        cls = _error_class(name)
        assert cls.__module__ == "eventlog.errors"
        for base in bases:
            assert issubclass(cls, _error_class(base))

    def test_input_errors_are_value_errors(self, store: Store) -> None:
        with pytest.raises(ValueError):
            store.save_delta(SID, delta(Entry(id="")))

    def test_missing_session_is_a_lookup_error(self, store: Store) -> None:
        with pytest.raises(LookupError):
            store.path("missing")

    def test_real_errors_have_the_expected_types(self, store: Store) -> None:
        errors = _real_errors(store)
        assert [type(error) for error in errors] == [
            IdConflictError,
            ConcurrencyError,
            InvalidPayloadError,
            InvalidPayloadError,
            InvalidPayloadError,
            InvalidPayloadError,
            InvalidPayloadError,
            InvalidPayloadError,
            PayloadTooLargeError,
            InvalidLeafError,
            IdConflictError,
            SessionExistsError,
            HistoryPurgedError,
            SessionNotFoundError,
            InvalidIdError,
        ]

    def test_error_text_never_contains_payload_or_metadata(self, store: Store) -> None:
        for error in _real_errors(store):
            assert_private(error)

    def test_errors_carry_session_and_entry(self, store: Store) -> None:
        errors = _real_errors(store)
        assert all(error.session_id in (SID, "missing") for error in errors)
        assert errors[0].entry_id == "a"
        assert errors[2].entry_id == "n"
        assert errors[10].entry_id == "d"
        assert errors[14].entry_id == "z"

    def test_errors_pickle_with_their_fields(self, store: Store) -> None:
        for error in _real_errors(store):
            copy = pickle.loads(pickle.dumps(error))
            assert type(copy) is type(error)
            assert str(copy) == str(error)
            assert copy.session_id == error.session_id
            assert copy.entry_id == error.entry_id
            assert copy.where == error.where

    def test_concurrency_error_pickles_its_versions(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        with pytest.raises(ConcurrencyError) as caught:
            store.save_delta(SID, delta(msg("b")), expected_version=0)
        copy = pickle.loads(pickle.dumps(caught.value))
        assert isinstance(copy, ConcurrencyError)
        assert (copy.expected_version, copy.actual_version) == (0, 1)
        assert copy.session_id == SID

    def test_logs_never_contain_payload_or_metadata(
        self, store: Store, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        private = {"text": SENTINEL}
        store.save_delta(SID, delta(Entry(id="a", payload=private), leaf="a", metadata=private))
        store.save(SID, SessionData(entries=[Entry(id="a", payload={"t": SENTINEL})], leaf_id="a"))
        store.load(SID)
        store.load(SID, raw=True, at_version=1)
        store.path(SID)
        store.fork(SID, "f")
        store.purge(SID)
        store.list_sessions()
        failing: list[Callable[[], object]] = [
            lambda: store.save_delta(SID, delta(Entry(id="a", payload={"x": SENTINEL}))),
            lambda: store.save_delta(SID, delta(Entry(id="q", payload={SENTINEL: float("nan")}))),
        ]
        for call in failing:
            with pytest.raises(EventlogError):
                call()
        assert SENTINEL not in caplog.text
        for record in caplog.records:
            assert SENTINEL not in repr(record.__dict__)

    def test_id_conflict_in_a_large_delta_writes_nothing(
        self, backend: BackendLike, store: Store
    ) -> None:
        store.save_delta(SID, delta(*chain([f"e{n}" for n in range(10)])))
        clash = [*chain([f"n{n}" for n in range(30)]), msg("e5", "e4", "changed")]
        with unchanged(backend, SID), pytest.raises(IdConflictError):
            store.save_delta(SID, delta(*clash))

    def test_closed_store_raises_eventlog_errors(self, backend: BackendLike) -> None:
        backend.store.save_delta(SID, delta(msg("a")))
        backend.store.close()
        backend.store.close()
        for call in (
            lambda: backend.store.load(SID),
            lambda: backend.store.save_delta(SID, delta(msg("b"))),
            lambda: backend.store.list_sessions(),
        ):
            try:
                call()
            except Exception as error:
                assert isinstance(error, EventlogError), type(error)
        backend.reopen()

    def test_bad_where_names_nested_field(self, store: Store) -> None:
        with pytest.raises(InvalidPayloadError) as caught:
            store.save_delta(SID, delta(msg("a"), msg("b"), Entry(id="c", payload=as_any([]))))
        assert caught.value.where is not None
        assert "new_entries" in caught.value.where
        assert "2" in caught.value.where
        assert "payload" in caught.value.where
