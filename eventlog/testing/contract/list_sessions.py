"""list_sessions: order, prefix, updated_before, paging and the index record."""

from __future__ import annotations

import base64
import time
from datetime import timedelta

import pytest

from eventlog import Entry, InvalidInputError, RawJSON, SessionData, SessionInfo, Store

from ._helpers import delta, info, msg


def _create(store: Store, *session_ids: str) -> None:
    for sid in session_ids:
        store.save_delta(sid, delta(msg("a"), leaf="a"))


def _all(store: Store, **kwargs: object) -> list[SessionInfo]:
    items: list[SessionInfo] = []
    cursor: str | None = None
    for _ in range(1000):
        page = store.list_sessions(cursor=cursor, **kwargs)  # type: ignore[arg-type]
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


def _names(items: list[SessionInfo]) -> list[str]:
    return [item.session_id for item in items]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii")


class ListSessionsContract:
    """list_sessions: order, prefix, updated_before, paging and the index record."""

    def test_empty_store_lists_nothing(self, store: Store) -> None:
        page = store.list_sessions()
        assert page.items == []
        assert page.next_cursor is None

    def test_sessions_are_listed_in_session_id_order(self, store: Store) -> None:
        names = ["c", "a", "B", "é", "\U0001f600", "a/b", "ab", "a-"]
        _create(store, *names)
        page = store.list_sessions()
        assert _names(page.items) == sorted(names)
        assert page.next_cursor is None

    def test_index_record_describes_the_session(self, store: Store) -> None:
        store.save_delta(
            "s",
            delta(
                Entry(id="a", payload=RawJSON(b'{"x":1}')),
                Entry(id="b", parent_id="a", payload=RawJSON(b'{"y":22}')),
                leaf="b",
            ),
        )
        store.save_delta("s", delta(removed=["b"], leaf="a"))
        listed = info(store, "s")
        assert listed.version == 2
        assert listed.entry_count == 1
        assert listed.removed_count == 1
        assert listed.bytes == len(b'{"x":1}') + len(b'{"y":22}')
        assert listed.parent_session_id is None
        assert listed.created_at.utcoffset() == timedelta(0)
        assert listed.updated_at.utcoffset() == timedelta(0)
        assert listed.created_at <= listed.updated_at
        data = store.load("s")
        assert data is not None
        assert listed.created_at == data.created_at
        assert listed.updated_at == data.updated_at

    def test_superseded_records_count_as_removed(self, store: Store) -> None:
        store.save("s", SessionData(entries=[Entry(id="a", payload=RawJSON(b'{"v":1}'))]))
        store.save("s", SessionData(entries=[Entry(id="a", payload=RawJSON(b'{"v":22}'))]))
        listed = info(store, "s")
        assert listed.entry_count == 1
        assert listed.removed_count == 1
        assert listed.bytes == len(b'{"v":1}{"v":22}')

    def test_prefix_filters(self, store: Store) -> None:
        _create(store, "a", "a/1", "a/2", "ab", "b/1", "A/3")
        assert _names(store.list_sessions(prefix="a/").items) == ["a/1", "a/2"]
        assert _names(store.list_sessions(prefix="a").items) == ["a", "a/1", "a/2", "ab"]
        assert _names(store.list_sessions(prefix="zzz").items) == []
        assert _names(store.list_sessions(prefix="").items) == sorted(
            ["a", "a/1", "a/2", "ab", "b/1", "A/3"]
        )

    def test_prefix_is_case_sensitive(self, store: Store) -> None:
        _create(store, "Abc", "abc", "ABC")
        assert _names(store.list_sessions(prefix="a").items) == ["abc"]
        assert _names(store.list_sessions(prefix="A").items) == ["ABC", "Abc"]

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("50%", ["50%_off", "50%x"]),
            ("50%_", ["50%_off"]),
            ("a_", ["a_b"]),
            ("%", ["%lead"]),
            ("_", ["_lead"]),
            ("a\\", ["a\\b"]),
            ("[a", ["[a]"]),
            ("*", ["*x"]),
        ],
    )
    def test_prefix_wildcard_characters_are_literal(
        self, store: Store, prefix: str, expected: list[str]
    ) -> None:
        _create(
            store,
            "50%_off",
            "50%x",
            "50xx_off",
            "500",
            "a_b",
            "axb",
            "a\\b",
            "ab",
            "%lead",
            "_lead",
            "xlead",
            "[a]",
            "a",
            "*x",
        )
        assert _names(store.list_sessions(prefix=prefix).items) == expected

    def test_prefix_with_non_ascii(self, store: Store) -> None:
        _create(store, "é/1", "é/2", "e/1", "É/1")
        assert _names(store.list_sessions(prefix="é").items) == ["é/1", "é/2"]

    def test_updated_before_filters(self, store: Store) -> None:
        _create(store, "old")
        time.sleep(0.02)
        _create(store, "new")
        cutoff = info(store, "new").updated_at
        assert info(store, "old").updated_at < cutoff
        assert _names(store.list_sessions(updated_before=cutoff).items) == ["old"]
        time.sleep(0.02)
        store.save_delta("old", delta(msg("b")))
        assert _names(store.list_sessions(updated_before=cutoff).items) == []
        later = info(store, "old").updated_at + timedelta(seconds=1)
        assert _names(store.list_sessions(updated_before=later).items) == ["new", "old"]

    def test_limit_and_cursor_page_through_everything(self, store: Store) -> None:
        names = [f"s{n:03d}" for n in range(25)]
        _create(store, *reversed(names))
        first = store.list_sessions(limit=10)
        assert _names(first.items) == names[:10]
        assert first.next_cursor is not None
        second = store.list_sessions(limit=10, cursor=first.next_cursor)
        assert _names(second.items) == names[10:20]
        assert second.next_cursor is not None
        third = store.list_sessions(limit=10, cursor=second.next_cursor)
        assert _names(third.items) == names[20:]
        assert third.next_cursor is None

    def test_last_full_page_has_no_cursor(self, store: Store) -> None:
        names = [f"s{n}" for n in range(6)]
        _create(store, *names)
        first = store.list_sessions(limit=3)
        assert first.next_cursor is not None
        second = store.list_sessions(limit=3, cursor=first.next_cursor)
        assert _names(second.items) == names[3:]
        assert second.next_cursor is None

    @pytest.mark.parametrize("limit", [1, 2, 7, 100])
    def test_paging_visits_each_session_once(self, store: Store, limit: int) -> None:
        names = [f"p{n:02d}" for n in range(13)]
        _create(store, *names)
        assert _names(_all(store, limit=limit)) == names

    def test_paging_with_prefix(self, store: Store) -> None:
        _create(store, *[f"x/{n}" for n in range(5)], *[f"y/{n}" for n in range(5)], "x")
        assert _names(_all(store, prefix="x/", limit=2)) == [f"x/{n}" for n in range(5)]

    def test_cursor_survives_writes_between_pages(self, store: Store) -> None:
        _create(store, "a", "b", "c", "d")
        first = store.list_sessions(limit=2)
        store.save_delta("bb", delta(msg("a")))
        store.delete("c")
        assert first.next_cursor is not None
        rest = store.list_sessions(limit=10, cursor=first.next_cursor)
        assert _names(rest.items) == ["bb", "d"]

    def test_deleted_sessions_are_not_listed(self, store: Store) -> None:
        _create(store, "a", "b")
        store.delete("a")
        assert _names(store.list_sessions().items) == ["b"]

    @pytest.mark.parametrize(
        "prefix",
        ["\ud800", "a\udfff", "\x00", "a\x00", "a" * 256, "é" * 128],
        ids=["lone surrogate", "trailing surrogate", "NUL", "trailing NUL", "256 bytes", "256 é"],
    )
    def test_prefix_no_session_id_can_start_with_lists_nothing(
        self, store: Store, prefix: str
    ) -> None:
        # No session id holds NUL or a lone surrogate, nor more than 255 bytes, so the
        # truthful answer is an empty page, the same on every backend.
        _create(store, "a", "a" * 255, "é" * 127)
        page = store.list_sessions(prefix=prefix)
        assert page.items == []
        assert page.next_cursor is None

    @pytest.mark.parametrize("limit", [2**31, 2**63 - 1, 2**63, 2**64, 10**40])
    def test_huge_limit_lists_everything(self, store: Store, limit: int) -> None:
        _create(store, "b", "a", "c")
        page = store.list_sessions(limit=limit)
        assert _names(page.items) == ["a", "b", "c"]
        assert page.next_cursor is None
        after_a = store.list_sessions(limit=1).next_cursor
        assert _names(store.list_sessions(limit=limit, cursor=after_a).items) == ["b", "c"]

    @pytest.mark.parametrize(
        "cursor",
        [
            "!!!",
            "YQ==!!!",
            "Y!Q==",
            "YQ",
            "YQ==\n",
            " YQ==",
            "YR==",
            "",
            _b64(b"\x00"),
            _b64(b"a\x00b"),
            _b64(b"\xff"),
            _b64(b"\xed\xa0\x80"),
            _b64(b"a" * 256),
            "é",
        ],
        ids=[
            "punctuation",
            "trailing garbage",
            "garbage inside",
            "no padding",
            "newline",
            "leading space",
            "non-canonical bits",
            "empty",
            "NUL",
            "NUL inside",
            "not UTF-8",
            "encoded surrogate",
            "256 bytes",
            "not ASCII",
        ],
    )
    def test_cursor_the_store_did_not_make_is_rejected(self, store: Store, cursor: str) -> None:
        _create(store, "a", "b")
        with pytest.raises(InvalidInputError) as caught:
            store.list_sessions(cursor=cursor)
        assert caught.value.where == "cursor"

    def test_cursor_round_trips_every_session_id(self, store: Store) -> None:
        names = ["é", "\U0001f600", "a" * 255, "-_", "?/+", "\x7f"]
        _create(store, *names)
        assert _names(_all(store, limit=1)) == sorted(names)
