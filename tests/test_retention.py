"""Retention: delete_idle_sessions pages through idle sessions and deletes them one by one."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import eventlog
from eventlog import Entry, InvalidInputError, SessionDelta, Store
from eventlog.retention import delete_idle_sessions, parse_duration


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'r.db'}"
    with eventlog.connect(url) as opened:
        yield opened


def _create(store: Store, *session_ids: str) -> None:
    for sid in session_ids:
        store.save_delta(sid, SessionDelta(new_entries=[Entry("a", None, "message", None, {})]))


def _ids(store: Store) -> list[str]:
    return [info.session_id for info in store.list_sessions(limit=1000).items]


def _moment_after_last_write() -> datetime:
    moment = datetime.now(UTC)
    time.sleep(0.01)  # later writes get a strictly later updated_at
    return moment


def test_deletes_sessions_idle_before_the_cutoff_and_keeps_the_rest(store: Store) -> None:
    _create(store, "b-old", "d-old", "a-old")
    cutoff = _moment_after_last_write()
    _create(store, "c-new", "e-new")
    store.save_delta("d-old", SessionDelta(metadata={"touched": True}))  # written again: kept
    deleted = delete_idle_sessions(store, timedelta(days=1), now=cutoff + timedelta(days=1))
    assert deleted == 2
    assert _ids(store) == ["c-new", "d-old", "e-new"]
    assert store.load("a-old") is None


def test_pages_through_more_sessions_than_one_batch(store: Store) -> None:
    names = [f"s{number:02d}" for number in range(11)]
    _create(store, *names)
    later = datetime.now(UTC) + timedelta(hours=2)
    assert delete_idle_sessions(store, timedelta(hours=1), batch_size=3, now=later) == 11
    assert _ids(store) == []


def test_idle_sessions_interleaved_with_active_ones_across_pages(store: Store) -> None:
    idle = [f"s{number:02d}" for number in range(0, 12, 2)]
    _create(store, *idle)
    cutoff = _moment_after_last_write()
    active = [f"s{number:02d}" for number in range(1, 12, 2)]
    _create(store, *active)
    deleted = delete_idle_sessions(
        store, timedelta(minutes=5), batch_size=2, now=cutoff + timedelta(minutes=5)
    )
    assert deleted == len(idle)
    assert _ids(store) == active


def test_nothing_idle_deletes_nothing(store: Store) -> None:
    _create(store, "a", "b")
    assert delete_idle_sessions(store, timedelta(days=30)) == 0
    assert _ids(store) == ["a", "b"]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"older_than": timedelta()}, "older_than"),
        ({"older_than": timedelta(days=-1)}, "older_than"),
        ({"older_than": timedelta(days=1), "batch_size": 0}, "batch_size"),
        ({"older_than": timedelta(days=1), "batch_size": True}, "batch_size"),
        ({"older_than": timedelta(days=1), "now": datetime(2030, 1, 1)}, "now"),
        ({"older_than": timedelta(days=1), "now": "2030-01-01T00:00:00Z"}, "now"),
        ({"older_than": 86400}, "older_than"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_deleted(
    store: Store, kwargs: dict[str, object], where: str
) -> None:
    _create(store, "a")
    with pytest.raises(InvalidInputError, match=where):
        delete_idle_sessions(store, **kwargs)  # type: ignore[arg-type]
    assert _ids(store) == ["a"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 7D ", timedelta(days=7)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "30", "d", "30 days", "-1d", "0d", "1.5h", "3y"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 30, b"30d"])
def test_parse_duration_refuses_what_is_not_a_str(value: object) -> None:
    with pytest.raises(InvalidInputError, match="must be a str"):
        parse_duration(value)  # type: ignore[arg-type]


class _WrittenAfterListing:
    """A store whose listed sessions get a write right after each listing, as
    when an agent resumes a session while retention sweeps."""

    def __init__(self, inner: Store, resumed: str) -> None:
        self._inner = inner
        self._resumed = resumed

    def list_sessions(self, **options: object) -> eventlog.Page:
        page = self._inner.list_sessions(**options)  # type: ignore[arg-type]
        if any(item.session_id == self._resumed for item in page.items):
            self._inner.save_delta(self._resumed, SessionDelta([Entry("resumed", "a")]))
        return page

    def delete(self, session_id: str, /, *, expected_version: int | None = None) -> bool:
        return self._inner.delete(session_id, expected_version=expected_version)


def test_a_session_written_between_listing_and_deletion_is_kept(store: Store) -> None:
    _create(store, "a-idle", "b-resumed", "c-idle")
    later = datetime.now(UTC) + timedelta(hours=2)
    sweeping = _WrittenAfterListing(store, "b-resumed")
    deleted = delete_idle_sessions(sweeping, timedelta(hours=1), now=later)  # type: ignore[arg-type]
    assert deleted == 2
    assert _ids(store) == ["b-resumed"]
    kept = store.load("b-resumed")
    assert kept is not None and [entry.id for entry in kept.entries] == ["a", "resumed"]


@pytest.mark.parametrize(
    "text", ["99999999999999999999d", "1" * 5000 + "s", "999999999999w", "1d99999999999999999999h"]
)
def test_parse_duration_refuses_a_duration_too_long_to_represent(text: str) -> None:
    with pytest.raises(InvalidInputError, match="too long"):
        parse_duration(text)


@pytest.mark.parametrize("older_than", [timedelta(weeks=10**6), timedelta.max])
def test_a_cutoff_before_year_one_deletes_nothing(store: Store, older_than: timedelta) -> None:
    _create(store, "a", "b")
    later = datetime.now(UTC) + timedelta(days=1)
    assert delete_idle_sessions(store, older_than) == 0
    assert delete_idle_sessions(store, older_than, now=later) == 0
    assert _ids(store) == ["a", "b"]


def test_a_batch_size_beyond_any_page_still_deletes_every_idle_session(store: Store) -> None:
    _create(store, "a", "b", "c")
    later = datetime.now(UTC) + timedelta(hours=2)
    deleted = delete_idle_sessions(store, timedelta(hours=1), batch_size=10**20, now=later)
    assert deleted == 3
    assert _ids(store) == []
