"""Validation of ids and JSON: typed errors, nothing written (DESIGN.md 1, 2 Validation).

The rejected values come from the bad-input table of `bad_input`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from eventlog import (
    Entry,
    InvalidIdError,
    InvalidInputError,
    InvalidPayloadError,
    PayloadTooLargeError,
    RawJSON,
    SessionData,
    SessionDelta,
    Store,
)

from .._backend import BackendLike
from ._helpers import (
    SID,
    as_any,
    assert_where,
    delta,
    loaded,
    msg,
    nested_object,
    unchanged,
)
from .bad_input import (
    BAD_ID_NAMES,
    BAD_IDS,
    BAD_JSON,
    BAD_JSON_NAMES,
    BAD_RAW,
    BAD_RAW_METADATA,
    BAD_REFERENCE_ID_NAMES,
    BAD_REFERENCE_IDS,
    ILL_TYPED_ENTRIES,
    ILL_TYPED_ENTRY_NAMES,
    MIB,
    NESTED_BUILDER_NAMES,
    NESTED_BUILDERS,
    NOT_OBJECT_METADATA,
    NOT_OBJECT_METADATA_NAMES,
    NOT_OBJECT_PAYLOAD_NAMES,
    NOT_OBJECT_PAYLOADS,
    TOO_DEEP,
    TOO_LARGE_TEXT_BYTES,
)

GOOD_IDS = ["a" * 255, "é" * 127 + "a", "\U0001f600" * 63 + "abc", "x", " ", "a/b%_*?\n\t"]


class ValidationContract:
    """Validation of ids and JSON: typed errors, nothing written."""

    @pytest.mark.parametrize("bad", BAD_IDS, ids=BAD_ID_NAMES)
    def test_bad_entry_id_is_rejected(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        store.save_delta(SID, delta(msg("ok")))
        with unchanged(backend, SID), pytest.raises(InvalidIdError) as caught:
            store.save_delta(SID, delta(msg("fine"), Entry(id=as_any(bad))))
        assert caught.value.session_id == SID
        assert_where(caught.value, "new_entries", 1, "id")

    @pytest.mark.parametrize("bad", BAD_IDS, ids=BAD_ID_NAMES)
    def test_bad_parent_id_is_rejected(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidIdError) as caught:
            store.save_delta(SID, delta(msg("a"), Entry(id="b", parent_id=as_any(bad))))
        assert caught.value.entry_id == "b"
        assert_where(caught.value, "new_entries", 1, "parent_id")

    @pytest.mark.parametrize("bad", BAD_IDS, ids=BAD_ID_NAMES)
    def test_bad_entry_id_in_snapshot_is_rejected(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        store.save(SID, SessionData(entries=[msg("a")]))
        entries = [msg("a"), msg("b"), msg("c"), Entry(id=as_any(bad))]
        with unchanged(backend, SID), pytest.raises(InvalidIdError) as caught:
            store.save(SID, SessionData(entries=entries))
        assert_where(caught.value, "entries", 3, "id")

    @pytest.mark.parametrize("bad", BAD_REFERENCE_IDS, ids=BAD_REFERENCE_ID_NAMES)
    def test_bad_removed_id_is_rejected(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(InvalidIdError) as caught:
            store.save_delta(SID, SessionDelta(removed_entry_ids=["a", as_any(bad)]))
        assert_where(caught.value, "removed_entry_ids", 1)

    @pytest.mark.parametrize("bad", BAD_REFERENCE_IDS, ids=BAD_REFERENCE_ID_NAMES)
    def test_bad_leaf_id_is_rejected(self, backend: BackendLike, store: Store, bad: object) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        with unchanged(backend, SID), pytest.raises(InvalidInputError):
            store.save_delta(SID, delta(leaf=as_any(bad)))
        with unchanged(backend, SID), pytest.raises(InvalidInputError):
            store.save(SID, SessionData(entries=[msg("a")], leaf_id=as_any(bad)))

    @pytest.mark.parametrize("good", GOOD_IDS)
    def test_entry_ids_up_to_255_bytes_are_accepted(self, store: Store, good: str) -> None:
        store.save_delta(SID, delta(msg(good), msg("child", good), leaf=good))
        data = loaded(store, SID)
        assert data.entries[0].id == good
        assert data.entries[1].parent_id == good
        assert data.leaf_id == good

    @pytest.mark.parametrize("bad", BAD_IDS, ids=BAD_ID_NAMES)
    def test_bad_session_id_is_rejected_by_writes(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        with unchanged(backend, SID), pytest.raises(InvalidIdError):
            store.save_delta(as_any(bad), delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(InvalidIdError):
            store.save(as_any(bad), SessionData(entries=[msg("a")]))
        with unchanged(backend, SID), pytest.raises(InvalidIdError):
            store.fork(SID, as_any(bad))
        assert [item.session_id for item in store.list_sessions().items] == [SID]

    @pytest.mark.parametrize("good", GOOD_IDS)
    def test_session_ids_up_to_255_bytes_are_accepted(self, store: Store, good: str) -> None:
        store.save_delta(good, delta(msg("a")))
        assert loaded(store, good).version == 1
        assert [item.session_id for item in store.list_sessions().items] == [good]
        assert store.delete(good) is True

    def test_self_parent_is_an_id_error(self, backend: BackendLike, store: Store) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidIdError) as caught:
            store.save(SID, SessionData(entries=[msg("a"), msg("b", "a"), msg("c", "c")]))
        assert caught.value.entry_id == "c"
        assert_where(caught.value, "entries", 2, "parent_id")

    @pytest.mark.parametrize("entry", ILL_TYPED_ENTRIES, ids=ILL_TYPED_ENTRY_NAMES)
    def test_ill_typed_entry_fields_are_rejected(
        self, backend: BackendLike, store: Store, entry: Entry
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidInputError):
            store.save_delta(SID, delta(entry))

    @pytest.mark.parametrize("bad", BAD_JSON, ids=BAD_JSON_NAMES)
    def test_bad_json_in_payload_is_rejected(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError) as caught:
            store.save_delta(SID, delta(msg("b"), Entry(id="c", payload={"k": [as_any(bad)]})))
        assert caught.value.entry_id == "c"
        assert caught.value.session_id == SID
        assert_where(caught.value, "new_entries", 1, "payload")

    @pytest.mark.parametrize("bad", BAD_JSON, ids=BAD_JSON_NAMES)
    def test_bad_json_in_metadata_is_rejected(
        self, backend: BackendLike, store: Store, bad: object
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError) as caught:
            store.save_delta(SID, delta(msg("b"), metadata={"k": as_any(bad)}))
        assert_where(caught.value, "metadata")
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError):
            store.save(SID, SessionData(entries=[msg("a")], metadata={"k": as_any(bad)}))

    def test_bad_json_in_snapshot_names_the_entry(self, backend: BackendLike, store: Store) -> None:
        entries = [msg("a"), msg("b"), Entry(id="c", payload={"x": float("nan")})]
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError) as caught:
            store.save(SID, SessionData(entries=entries))
        assert caught.value.entry_id == "c"
        assert_where(caught.value, "entries", 2, "payload")

    @pytest.mark.parametrize("payload", NOT_OBJECT_PAYLOADS, ids=NOT_OBJECT_PAYLOAD_NAMES)
    def test_payload_must_be_an_object(
        self, backend: BackendLike, store: Store, payload: object
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError):
            store.save_delta(SID, delta(Entry(id="a", payload=as_any(payload))))

    @pytest.mark.parametrize("metadata", NOT_OBJECT_METADATA, ids=NOT_OBJECT_METADATA_NAMES)
    def test_metadata_must_be_an_object(
        self, backend: BackendLike, store: Store, metadata: object
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError):
            store.save_delta(SID, delta(msg("a"), metadata=as_any(metadata)))

    @pytest.mark.parametrize("raw", BAD_RAW)
    def test_bad_raw_payload_is_rejected(
        self, backend: BackendLike, store: Store, raw: bytes
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError) as caught:
            store.save_delta(SID, delta(msg("a"), Entry(id="b", payload=RawJSON(raw))))
        assert caught.value.entry_id == "b"

    @pytest.mark.parametrize("raw", BAD_RAW_METADATA)
    def test_bad_raw_metadata_is_rejected(
        self, backend: BackendLike, store: Store, raw: bytes
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError):
            store.save_delta(SID, delta(msg("a"), metadata=RawJSON(raw)))

    @pytest.mark.parametrize("build", NESTED_BUILDERS, ids=NESTED_BUILDER_NAMES)
    def test_depth_256_is_accepted(self, store: Store, build: Callable[[int], Any]) -> None:
        store.save_delta(SID, delta(Entry(id="a", payload=build(256)), metadata=build(256)))
        expected = build(256)
        if isinstance(expected, RawJSON):
            expected = json.loads(expected)
        data = loaded(store, SID)
        assert data.entries[0].payload == expected
        assert data.metadata == expected

    @pytest.mark.parametrize("build", NESTED_BUILDERS, ids=NESTED_BUILDER_NAMES)
    @pytest.mark.parametrize("depth", TOO_DEEP)
    def test_deeper_payload_is_rejected(
        self, backend: BackendLike, store: Store, build: Callable[[int], Any], depth: int
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError) as caught:
            store.save_delta(SID, delta(msg("a"), Entry(id="b", payload=build(depth))))
        assert caught.value.entry_id == "b"

    @pytest.mark.parametrize("depth", TOO_DEEP)
    def test_deeper_metadata_is_rejected(
        self, backend: BackendLike, store: Store, depth: int
    ) -> None:
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError):
            store.save_delta(SID, delta(msg("a"), metadata=nested_object(depth)))

    def test_payload_over_16_mib_is_too_large(self, backend: BackendLike, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        big = {"text": "x" * TOO_LARGE_TEXT_BYTES}
        with unchanged(backend, SID), pytest.raises(PayloadTooLargeError) as caught:
            store.save_delta(SID, delta(msg("b"), Entry(id="c", payload=big)))
        assert caught.value.entry_id == "c"
        assert isinstance(caught.value, InvalidPayloadError)

    def test_raw_payload_over_16_mib_is_too_large(self, backend: BackendLike, store: Store) -> None:
        raw = RawJSON(b'{"text":"' + b"x" * TOO_LARGE_TEXT_BYTES + b'"}')
        with unchanged(backend, SID), pytest.raises(PayloadTooLargeError):
            store.save(SID, SessionData(entries=[Entry(id="a", payload=raw)]))

    def test_metadata_over_16_mib_is_too_large(self, backend: BackendLike, store: Store) -> None:
        with unchanged(backend, SID), pytest.raises(PayloadTooLargeError):
            store.save_delta(SID, delta(metadata={"text": "x" * TOO_LARGE_TEXT_BYTES}))

    def test_payload_under_16_mib_is_accepted(self, store: Store) -> None:
        payload = {"text": "x" * (15 * MIB)}
        store.save_delta(SID, delta(Entry(id="a", payload=payload)))
        assert loaded(store, SID).entries[0].payload == payload

    def test_valid_entries_before_a_bad_one_are_not_written(
        self, backend: BackendLike, store: Store
    ) -> None:
        good = [msg(f"e{n}") for n in range(20)]
        with unchanged(backend, SID), pytest.raises(InvalidPayloadError):
            store.save_delta(SID, delta(*good, Entry(id="bad", payload={"x": float("nan")})))
        assert store.load(SID) is None
