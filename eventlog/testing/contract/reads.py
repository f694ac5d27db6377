"""The reads agent frameworks need: info, entry, path's tail and scan (DESIGN.md section 2)."""

from __future__ import annotations

import pytest

from eventlog import (
    CorruptionError,
    Entry,
    InvalidLeafError,
    RawJSON,
    SessionData,
    SessionNotFoundError,
    Store,
)

from .._backend import BackendLike
from ._helpers import SID, chain, delta, info, loaded, msg, raw_bytes, unchanged
from .bad_input import BadInput, bad_read_calls

_BAD_READS = bad_read_calls(SID)


def _ids(entries: list[Entry]) -> list[str]:
    return [entry.id for entry in entries]


class ReadsContract:
    """info, entry, path(limit=) and scan: each the part of `load` it stands for."""

    # -- info ---------------------------------------------------------------

    def test_info_of_a_missing_session_is_none(self, store: Store) -> None:
        assert store.info("never-written") is None

    def test_info_is_the_listed_index_row_with_the_leaf(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b"]), leaf="b", metadata={"m": 1}))
        got = store.info(SID)
        assert got == info(store, SID)
        assert got is not None
        assert (got.leaf_id, got.version, got.entry_count) == ("b", 1, 2)

    def test_info_follows_the_leaf_through_writes(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        first = store.info(SID)
        assert first is not None and first.leaf_id is None
        store.save_delta(SID, delta(msg("b", "a"), leaf="b"))
        store.save_delta(SID, delta(removed=["b"], leaf="a"))
        after = store.info(SID)
        assert after is not None
        assert (after.leaf_id, after.version, after.entry_count, after.removed_count) == (
            "a",
            3,
            1,
            1,
        )
        store.save(SID, SessionData(entries=[msg("a"), msg("z")], leaf_id="z"))
        saved = store.info(SID)
        assert saved is not None and saved.leaf_id == "z"
        store.delete(SID)
        assert store.info(SID) is None

    def test_load_reports_the_same_leaf_as_info(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="c"))
        data = loaded(store, SID)
        got = store.info(SID)
        assert got is not None and got.leaf_id == data.leaf_id == "c"

    def test_a_fork_has_the_leaf_it_was_forked_at(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), leaf="c"))
        store.fork(SID, "forked", at_entry_id="b")
        forked = store.info("forked")
        assert forked is not None
        assert (forked.leaf_id, forked.parent_session_id, forked.forked_from_entry_id) == (
            "b",
            SID,
            "b",
        )

    # -- entry --------------------------------------------------------------

    def test_entry_is_the_entry_load_returns(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c"]), msg("side", "a", kind="custom")))
        for entry in loaded(store, SID).entries:
            assert store.entry(SID, entry.id) == entry
        raw = loaded(store, SID, raw=True)
        for entry in raw.entries:
            got = store.entry(SID, entry.id, raw=True)
            assert got is not None
            assert raw_bytes(got.payload) == raw_bytes(entry.payload)
            assert got == entry

    def test_entry_keeps_the_exact_bytes_stored(self, store: Store) -> None:
        exact = b'{ "z" : 1,  "a":[1.0, "\\u00e9"] }'
        store.save_delta(SID, delta(Entry(id="a", payload=RawJSON(exact))))
        got = store.entry(SID, "a", raw=True)
        assert got is not None and raw_bytes(got.payload) == exact
        plain = store.entry(SID, "a")
        assert plain is not None and plain.payload == {"z": 1, "a": [1.0, "é"]}

    def test_entry_missing_or_removed_is_none(self, store: Store) -> None:
        assert store.entry("never-written", "a") is None
        store.save_delta(SID, delta(msg("a"), msg("b")))
        assert store.entry(SID, "nope") is None
        store.save_delta(SID, delta(removed=["b"]))
        assert store.entry(SID, "b") is None
        assert store.entry(SID, "a") == msg("a")

    def test_entry_after_a_save_changed_it_is_the_new_content(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a", text="old"), msg("b")))
        store.save(SID, SessionData(entries=[msg("a", text="new"), msg("b")]))
        assert store.entry(SID, "a") == msg("a", text="new")
        store.save(SID, SessionData(entries=[msg("b")]))
        assert store.entry(SID, "a") is None
        store.save(SID, SessionData(entries=[msg("b"), msg("a", text="back")]))
        assert store.entry(SID, "a") == msg("a", text="back")

    # -- path(limit=) -------------------------------------------------------

    def test_path_limit_is_the_tail_of_the_path(self, store: Store) -> None:
        ids = [f"e{i:02d}" for i in range(12)]
        store.save_delta(SID, delta(*chain(ids), msg("side", "e03"), leaf="e11"))
        whole = store.path(SID)
        for n in [1, 2, 5, 11, 12, 13, 1000]:
            assert store.path(SID, limit=n) == whole[-n:], n
        side = store.path(SID, leaf_id="side")
        for n in [1, 3, 5, 6]:
            assert store.path(SID, leaf_id="side", limit=n) == side[-n:], n

    def test_path_limit_stops_where_the_parent_is_not_live(self, store: Store) -> None:
        store.save_delta(SID, delta(*chain(["a", "b", "c", "d"]), leaf="d"))
        store.save_delta(SID, delta(removed=["b"]))
        assert _ids(store.path(SID, limit=10)) == ["c", "d"]
        assert _ids(store.path(SID, limit=1)) == ["d"]

    def test_path_limit_of_a_session_without_leaf_is_empty(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a")))
        assert store.path(SID, limit=5) == []

    def test_path_limit_on_a_missing_session_raises(self, store: Store) -> None:
        with pytest.raises(SessionNotFoundError) as caught:
            store.path("never-written", limit=3)
        assert caught.value.session_id == "never-written"

    def test_path_limit_to_a_leaf_that_is_not_live_raises(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a"), msg("b", "a"), leaf="a"))
        store.save_delta(SID, delta(removed=["b"]))
        for leaf in ["b", "never"]:
            with pytest.raises(InvalidLeafError) as caught:
                store.path(SID, leaf_id=leaf, limit=3)
            assert (caught.value.session_id, caught.value.entry_id) == (SID, leaf)

    def test_path_limit_meeting_a_cycle_raises_corruption(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("a", "c"), msg("b", "a"), msg("c", "b"), leaf="c"))
        with pytest.raises(CorruptionError) as caught:
            store.path(SID, limit=4)
        assert caught.value.session_id == SID
        # A tail short of the cycle's length does not meet it: it reads only its entries.
        assert _ids(store.path(SID, limit=3)) == ["a", "b", "c"]

    # -- scan ---------------------------------------------------------------

    def test_scan_is_the_live_entries_with_the_prefix_in_id_order(self, store: Store) -> None:
        ids = ["write:2:b", "write:1:a", "write:10", "writ", "write;", "w", "cp:1", "write:é"]
        store.save_delta(SID, delta(*[msg(i) for i in ids]))
        by_id = {entry.id: entry for entry in loaded(store, SID).entries}
        for prefix in ["write:", "write", "w", "cp:", "", "x", "write:1"]:
            expected = sorted(i for i in ids if i.startswith(prefix))
            got = store.scan(SID, id_prefix=prefix)
            assert _ids(got) == expected, prefix
            assert got == [by_id[i] for i in expected]

    def test_scan_orders_by_code_point(self, store: Store) -> None:
        ids = ["p\U0001f600", "p\uffff", "p\u00e9", "pZ", "pa", "p\U0010ffff", "p\ue000"]
        store.save_delta(SID, delta(*[msg(i) for i in ids]))
        assert _ids(store.scan(SID, id_prefix="p")) == sorted(ids)
        assert _ids(store.scan(SID, id_prefix="p\U0010ffff")) == ["p\U0010ffff"]
        assert _ids(store.scan(SID, id_prefix="p\uffff")) == ["p\uffff"]

    def test_scan_is_case_sensitive(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("Write:1"), msg("write:1"), msg("WRITE:2")))
        assert _ids(store.scan(SID, id_prefix="write:")) == ["write:1"]
        assert _ids(store.scan(SID, id_prefix="W")) == ["WRITE:2", "Write:1"]

    def test_scan_pages_with_after_id_and_limit(self, store: Store) -> None:
        ids = [f"k:{i:03d}" for i in range(25)]
        store.save_delta(SID, delta(*[msg(i) for i in reversed(ids)], msg("other")))
        seen: list[str] = []
        after: str | None = None
        while True:
            page = store.scan(SID, id_prefix="k:", after_id=after, limit=7)
            if not page:
                break
            assert len(page) <= 7
            seen += _ids(page)
            after = page[-1].id
        assert seen == ids
        assert _ids(store.scan(SID, id_prefix="k:", after_id="k:0105")) == ids[11:]
        assert _ids(store.scan(SID, id_prefix="k:", after_id="a")) == ids
        assert store.scan(SID, id_prefix="k:", after_id="z") == []

    def test_scan_leaves_out_removed_entries(self, store: Store) -> None:
        store.save_delta(SID, delta(msg("x:1"), msg("x:2"), msg("x:3")))
        store.save_delta(SID, delta(removed=["x:2"]))
        assert _ids(store.scan(SID, id_prefix="x:")) == ["x:1", "x:3"]
        store.save(SID, SessionData(entries=[msg("x:3", text="changed")]))
        assert store.scan(SID, id_prefix="x:") == [msg("x:3", text="changed")]

    def test_scan_raw_keeps_the_exact_bytes(self, store: Store) -> None:
        exact = b'{"b":1,   "a":2}'
        store.save_delta(SID, delta(Entry(id="r:1", payload=RawJSON(exact))))
        (got,) = store.scan(SID, id_prefix="r:", raw=True)
        assert raw_bytes(got.payload) == exact

    def test_scan_of_a_missing_session_is_empty(self, store: Store) -> None:
        assert store.scan("never-written", id_prefix="") == []

    # -- bad input ----------------------------------------------------------

    @pytest.mark.parametrize("bad", _BAD_READS, ids=[bad.name for bad in _BAD_READS])
    def test_bad_read_arguments_raise_typed_errors(
        self, backend: BackendLike, store: Store, bad: BadInput
    ) -> None:
        store.save_delta(SID, delta(msg("a")))
        with unchanged(backend, SID), pytest.raises(bad.error) as caught:
            bad.call(store)
        assert caught.value.where is not None
