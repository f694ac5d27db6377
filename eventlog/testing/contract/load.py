"""load: folding the log back, exact bytes with raw=True, JSON round-trips (DESIGN.md 1-2)."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

from eventlog import Entry, RawJSON, SessionData, Store

from ._helpers import SID, delta, loaded, msg, nested_object


def _roundtrip(store: Store, payload: dict[str, Any] | RawJSON) -> Entry:
    store.save_delta(SID, delta(Entry(id="a", payload=payload)))
    return loaded(store, SID).entries[0]


class LoadContract:
    """load: folding the log back, exact bytes with raw=True, JSON round-trips."""

    def test_missing_session_loads_as_none(self, store: Store) -> None:
        assert store.load("never-written") is None
        assert store.load("never-written", raw=True) is None

    def test_loaded_session_carries_version_and_utc_times(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), leaf="a"))
        data = loaded(store, SID)
        assert data.version == 1
        assert data.created_at is not None
        assert data.updated_at is not None
        assert data.created_at.utcoffset() == timedelta(0)
        assert data.updated_at.utcoffset() == timedelta(0)
        assert data.created_at <= data.updated_at
        assert data.parent_session_id is None
        assert data.forked_from_entry_id is None

    def test_created_at_stays_and_updated_at_moves_forward(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        first = loaded(store, SID)
        store.save_delta(SID, delta(msg("b")))
        second = loaded(store, SID)
        assert second.created_at == first.created_at
        assert first.updated_at is not None
        assert second.updated_at is not None
        assert second.updated_at >= first.updated_at

    def test_payload_key_order_round_trips(self, store: Store) -> None:
        payload = {"z": 1, "a": {"y": 2, "b": 3}, "m": [{"q": 1, "c": 2}]}
        got = _roundtrip(store, payload)
        assert got.payload == payload
        assert isinstance(got.payload, dict)
        assert list(got.payload) == ["z", "a", "m"]
        assert list(got.payload["a"]) == ["y", "b"]
        assert list(got.payload["m"][0]) == ["q", "c"]

    def test_nul_in_strings_round_trips(self, store: Store) -> None:
        payload = {"text": "a\x00b", "k\x00ey": ["\x00"], "\x00": "\x00\x00"}
        store.save_delta(SID, delta(Entry(id="a", payload=payload), metadata={"m\x00": "v\x00"}))
        data = loaded(store, SID)
        assert data.entries[0].payload == payload
        assert data.metadata == {"m\x00": "v\x00"}

    def test_nul_escape_in_raw_payload_round_trips(self, store: Store) -> None:
        raw = RawJSON(b'{"t": "a\\u0000b"}')
        store.save_delta(SID, delta(Entry(id="a", payload=raw)))
        assert loaded(store, SID).entries[0].payload == {"t": "a\x00b"}
        assert loaded(store, SID, raw=True).entries[0].payload == raw

    def test_negative_zero_round_trips(self, store: Store) -> None:
        got = _roundtrip(store, {"x": -0.0, "y": [0.0, -0.0]})
        assert isinstance(got.payload, dict)
        assert math.copysign(1.0, got.payload["x"]) == -1.0
        assert math.copysign(1.0, got.payload["y"][0]) == 1.0
        assert math.copysign(1.0, got.payload["y"][1]) == -1.0

    def test_numbers_and_unicode_round_trip(self, store: Store) -> None:
        payload = {
            "ints": [0, -1, 2**53 + 1, -(2**63), 2**64 - 1],
            "floats": [1.5, 1e308, 5e-324, -2.5e-10],
            "bools": [True, False, None],
            "text": 'héllo \U0001f600 \u2028 "quoted" \\ \n\t',
            "ключ": "значение",
            "": "",
            "empty": {"obj": {}, "arr": []},
        }
        got = _roundtrip(store, payload)
        assert got.payload == payload
        assert isinstance(got.payload, dict)
        assert [type(v) for v in got.payload["ints"]] == [int] * 5
        assert [type(v) for v in got.payload["floats"]] == [float] * 4

    def test_raw_payload_bytes_are_exact(self, store: Store) -> None:
        raw = RawJSON(b'{ "a" :  1,\n  "a": 2,\t"b" : [ 1 , 2 ] }')
        store.save_delta(SID, delta(Entry(id="a", payload=raw)))
        got = loaded(store, SID, raw=True).entries[0].payload
        assert isinstance(got, RawJSON)
        assert bytes(got) == bytes(raw)

    def test_raw_payload_loads_as_dict_without_raw(self, store: Store) -> None:
        raw = RawJSON(b'{"b": 1,  "a": [1, {"z": null}]}')
        got = _roundtrip(store, raw)
        assert got.payload == {"b": 1, "a": [1, {"z": None}]}
        assert isinstance(got.payload, dict)
        assert list(got.payload) == ["b", "a"]

    def test_dict_payload_loads_as_raw_json_with_raw(self, store: Store) -> None:
        payload = {"b": 1, "a": "x\x00"}
        store.save_delta(SID, delta(Entry(id="a", payload=payload)))
        got = loaded(store, SID, raw=True).entries[0].payload
        assert isinstance(got, RawJSON)
        decoded = json.loads(bytes(got))
        assert decoded == payload
        assert list(decoded) == ["b", "a"]

    def test_metadata_raw_bytes_are_exact(self, store: Store) -> None:
        raw = RawJSON(b'{"title" :  "x", "title": "y"}')
        store.save_delta(SID, delta(metadata=raw))
        got = loaded(store, SID, raw=True).metadata
        assert isinstance(got, RawJSON)
        assert bytes(got) == bytes(raw)
        assert isinstance(loaded(store, SID).metadata, dict)

    def test_metadata_round_trips(self, store: Store) -> None:
        metadata = {"title": "t", "tags": ["a", "b"], "nested": {"z": 1, "a": 2}}
        store.save_delta(SID, delta(metadata=metadata))
        got = loaded(store, SID).metadata
        assert got == metadata
        assert isinstance(got, dict)
        assert list(got["nested"]) == ["z", "a"]

    def test_entry_fields_round_trip_unchanged(self, store: Store) -> None:
        entry = Entry(
            id="a",
            parent_id="ghost",
            kind="branch_summary",
            timestamp="2024-02-30T25:00:00+05:30 (as given)",
            payload={"x": 1},
        )
        store.save_delta(SID, delta(entry, msg("b", None, timestamp=None)))
        data = loaded(store, SID)
        assert data.entries[0] == entry
        assert data.entries[0].timestamp == "2024-02-30T25:00:00+05:30 (as given)"
        assert data.entries[1].timestamp is None

    def test_deep_payload_round_trips(self, store: Store) -> None:
        payload = nested_object(256)
        assert _roundtrip(store, payload).payload == payload

    def test_large_payload_round_trips(self, store: Store) -> None:
        payload = {"text": "x" * (2 * 1024 * 1024)}
        assert _roundtrip(store, payload).payload == payload

    def test_mutating_inputs_or_outputs_does_not_change_the_store(self, store: Store) -> None:
        payload: dict[str, object] = {"list": [1], "text": "t"}
        metadata: dict[str, object] = {"m": [1]}
        store.save_delta(SID, delta(Entry(id="a", payload=payload), metadata=metadata))
        payload["text"] = "changed"
        metadata["m"] = "changed"
        first = loaded(store, SID)
        assert isinstance(first.entries[0].payload, dict)
        assert isinstance(first.metadata, dict)
        first.entries[0].payload["list"].append(2)
        first.metadata["m"].append(2)
        second = loaded(store, SID)
        assert second.entries[0].payload == {"list": [1], "text": "t"}
        assert second.metadata == {"m": [1]}

    def test_load_equals_data_with_every_field(self, store: Store) -> None:
        data = SessionData(
            entries=[
                Entry(id="r", kind="custom", timestamp="t0", payload={"a": 1}),
                Entry(id="c", parent_id="r", payload=RawJSON(b'{"b":2}')),
            ],
            leaf_id="c",
            metadata={"x": None},
        )
        store.save(SID, data)
        assert loaded(store, SID, raw=True).entries[1].payload == RawJSON(b'{"b":2}')
        assert loaded(store, SID).entries[1].payload == {"b": 2}
