"""The Google ADK session service, with the real `google-adk` package, against ADK's own.

Each behaviour is checked on eventlog's service and, where ADK defines it, compared
with ADK's `InMemorySessionService` (and `DatabaseSessionService` on SQLite) on the
same call sequence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytest.importorskip("google.adk")

from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
)
from google.adk.sessions.in_memory_session_service import InMemorySessionService
from google.adk.sessions.session import Session
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import eventlog
from eventlog import AsyncStore, InvalidInputError
from eventlog.integrations.adk import EventlogSessionService

T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'adk.db'}"
    url: str = request.getfixturevalue("url")
    return url


def _with_service(url: str, body: Callable[[EventlogSessionService], Awaitable[T]]) -> T:
    async def main() -> T:
        store = await eventlog.connect_async(url)
        try:
            return await body(EventlogSessionService(store))
        finally:
            await store.close()

    return asyncio.run(main())


def _event(text: str, delta: dict[str, Any] | None = None, *, ts: float | None = None) -> Event:
    event = Event(
        author="user",
        invocation_id="inv",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(state_delta=dict(delta or {})),
    )
    if ts is not None:
        event.timestamp = ts
    return event


def _texts(session: Session | None) -> list[str]:
    assert session is not None
    return [e.content.parts[0].text or "" for e in session.events if e.content and e.content.parts]


def test_state_routing_temp_and_partial(store_url: str) -> None:
    async def body(service: EventlogSessionService) -> None:
        s = await service.create_session(
            app_name="a", user_id="u", session_id="s1", state={"k": 0, "app:x": 1, "user:y": 2}
        )
        await service.append_event(s, _event("one", {"k": 1, "temp:t": 9, "user:y": 3}))
        assert s.state["temp:t"] == 9  # kept in the caller's session for the invocation
        partial = _event("partial", {"k": 99})
        partial.partial = True
        await service.append_event(s, partial)
        other = await service.create_session(app_name="a", user_id="v", session_id="s1")
        got = await service.get_session(app_name="a", user_id="u", session_id="s1")
        assert got is not None
        assert got.state == {"k": 1, "app:x": 1, "user:y": 3}
        assert _texts(got) == ["one"]
        assert "temp:t" not in (got.events[0].actions.state_delta or {})
        assert other.state == {"app:x": 1}  # app state shared, user state not
        assert await service.get_user_state(app_name="a", user_id="u") == {"y": 3}
        assert await service.get_user_state(app_name="a", user_id="v") == {}

    _with_service(store_url, body)


def test_recent_events_and_after_timestamp(store_url: str) -> None:
    async def body(service: EventlogSessionService) -> None:
        s = await service.create_session(app_name="a", user_id="u", session_id="s")
        for i in range(10):
            await service.append_event(s, _event(f"e{i}", {"n": i}, ts=1000.0 + i))

        async def texts(config: GetSessionConfig) -> list[str]:
            got = await service.get_session(
                app_name="a", user_id="u", session_id="s", config=config
            )
            assert got is not None and got.state == {"n": 9}
            assert got.last_update_time == 1009.0
            return _texts(got)

        assert await texts(GetSessionConfig(num_recent_events=3)) == ["e7", "e8", "e9"]
        assert await texts(GetSessionConfig(num_recent_events=0)) == []
        assert await texts(GetSessionConfig(num_recent_events=50)) == [f"e{i}" for i in range(10)]
        assert await texts(GetSessionConfig(after_timestamp=1007.0)) == ["e7", "e8", "e9"]
        assert await texts(GetSessionConfig(num_recent_events=2, after_timestamp=1005.0)) == [
            "e8",
            "e9",
        ]

    _with_service(store_url, body)


def test_list_sessions_by_user_and_app_are_distinct(store_url: str) -> None:
    async def body(service: EventlogSessionService) -> None:
        # Ids that would collide if the parts were joined unquoted.
        await service.create_session(app_name="a", user_id="u/x", session_id="1", state={"k": 1})
        await service.create_session(app_name="a", user_id="u", session_id="x/1")
        await service.create_session(app_name="a/b", user_id="u", session_id="2")
        s3 = await service.create_session(app_name="a", user_id="u", session_id="3")
        await service.append_event(s3, _event("late", ts=9e9))
        mine = await service.list_sessions(app_name="a", user_id="u")
        assert [(s.user_id, s.id) for s in mine.sessions][-1] == ("u", "3")
        assert sorted(s.id for s in mine.sessions) == ["3", "x/1"]
        every = await service.list_sessions(app_name="a")
        assert sorted((s.user_id, s.id) for s in every.sessions) == [
            ("u", "3"),
            ("u", "x/1"),
            ("u/x", "1"),
        ]
        assert [s.state for s in every.sessions if s.user_id == "u/x"] == [{"k": 1}]
        assert all(not s.events for s in every.sessions)
        assert (await service.list_sessions(app_name="nope")).sessions == []

    _with_service(store_url, body)


def test_stale_session_raises_adks_error_and_writes_nothing(store_url: str) -> None:
    async def body(service: EventlogSessionService) -> None:
        s = await service.create_session(app_name="a", user_id="u", session_id="s")
        copy = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert copy is not None
        await service.append_event(s, _event("first"))
        with pytest.raises(StaleSessionError):
            await service.append_event(copy, _event("stale", {"k": 1}))
        got = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert _texts(got) == ["first"] and got is not None and got.state == {}
        fresh = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert fresh is not None
        await service.append_event(fresh, _event("second"))
        assert _texts(await service.get_session(app_name="a", user_id="u", session_id="s")) == [
            "first",
            "second",
        ]

    _with_service(store_url, body)


def test_bad_input(store_url: str) -> None:
    async def body(service: EventlogSessionService) -> None:
        with pytest.raises(InvalidInputError) as caught:
            await service.create_session(
                app_name="a", user_id="u", session_id="s", state={"f": object()}
            )
        assert caught.value.where == "state"
        assert await service.get_session(app_name="a", user_id="u", session_id="s") is None
        s = await service.create_session(app_name="a", user_id="u", session_id="s")
        with pytest.raises(AlreadyExistsError):
            await service.create_session(app_name="a", user_id="u", session_id="s")
        with pytest.raises(InvalidInputError):
            await service.append_event(s, _event("bad", {"f": object()}))
        bad = _event("bad", {"temp:t": 1, "k": 1, "f": object()})
        with pytest.raises(InvalidInputError):
            await service.append_event(s, bad)
        # Neither the caller's session nor its event was touched.
        assert s.state == {} and s.events == []
        assert bad.actions.state_delta == {"temp:t": 1, "k": 1, "f": bad.actions.state_delta["f"]}
        got = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert got is not None and got.events == [] and got.state == {}
        # temp: values are never stored, so they need not be JSON.
        handle = object()
        await service.append_event(s, _event("ok", {"temp:handle": handle, "k": 2}))
        assert s.state == {"temp:handle": handle, "k": 2}
        got = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert got is not None and got.state == {"k": 2} and len(got.events) == 1
        assert got.events[0].actions.state_delta == {"k": 2}
        s = got
        ghost = Session(app_name="a", user_id="u", id="ghost")
        with pytest.raises(SessionNotFoundError):
            await service.append_event(ghost, _event("x"))
        await service.delete_session(app_name="a", user_id="u", session_id="s")
        await service.delete_session(app_name="a", user_id="u", session_id="s")  # no-op
        assert await service.get_session(app_name="a", user_id="u", session_id="s") is None

    _with_service(store_url, body)


# -- differential: the same calls on eventlog's service and ADK's in-memory one --------

_KEYS = st.sampled_from(["k", "m", "app:a", "user:u", "temp:t"])
_VALUES = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.none(), st.lists(st.booleans()))
_STEP = st.tuples(
    st.sampled_from(["create", "append", "append", "append", "partial", "delete", "recent"]),
    st.integers(0, 1),
    st.integers(0, 1),
    _KEYS,
    _VALUES,
    st.integers(0, 4),
)


def _view(session: Session | None) -> Any:
    if session is None:
        return None
    return (
        session.id,
        session.user_id,
        session.state,
        [e.model_dump(mode="json") for e in session.events],
        session.last_update_time if session.events else None,
    )


async def _step(
    service: BaseSessionService,
    held: dict[tuple[str, str], Session],
    step: tuple[str, int, int, str, Any, int],
    clock: list[float],
) -> Any:
    op, user_n, sid_n, key, value, n = step
    user, sid = f"u{user_n}", f"s{sid_n}"
    existing = await service.get_session(app_name="app", user_id=user, session_id=sid)
    if op == "create":
        if existing is not None:
            return "exists"
        s = await service.create_session(
            app_name="app", user_id=user, session_id=sid, state={key: value}
        )
        held[(user, sid)] = s
        return (s.id, s.state)
    if op == "delete":
        await service.delete_session(app_name="app", user_id=user, session_id=sid)
        held.pop((user, sid), None)
        return None
    if op == "recent":
        got = await service.get_session(
            app_name="app",
            user_id=user,
            session_id=sid,
            config=GetSessionConfig(num_recent_events=n),
        )
        return _view(got)
    if existing is None:
        return "absent"
    clock[0] += 1.0
    event = _event(f"{op}-{clock[0]}", {key: value}, ts=clock[0])
    event.id = f"ev{clock[0]}"
    event.partial = op == "partial"
    await service.append_event(existing, event)
    return existing.state


def _peer(name: str) -> BaseSessionService:
    if name == "in_memory":
        return InMemorySessionService()
    pytest.importorskip("sqlalchemy")
    from google.adk.sessions.database_session_service import DatabaseSessionService

    return DatabaseSessionService("sqlite+aiosqlite:///:memory:")


@pytest.mark.parametrize("peer", ["in_memory", "database_sqlite"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_STEP, max_size=25))
def test_differential_against_adks_services(
    peer: str, steps: list[tuple[str, int, int, str, Any, int]]
) -> None:
    """The same calls on eventlog's service and on ADK's in-memory or SQL one."""

    async def main() -> None:
        store: AsyncStore = await eventlog.connect_async("memory://")
        ours: BaseSessionService = EventlogSessionService(store)
        theirs: BaseSessionService = _peer(peer)
        held_ours: dict[tuple[str, str], Session] = {}
        held_theirs: dict[tuple[str, str], Session] = {}
        clock_ours, clock_theirs = [1000.0], [1000.0]
        try:
            for step in steps:
                a = await _step(ours, held_ours, step, clock_ours)
                b = await _step(theirs, held_theirs, step, clock_theirs)
                assert a == b, step
                for user in ("u0", "u1"):
                    for sid in ("s0", "s1"):
                        got_a = await ours.get_session(app_name="app", user_id=user, session_id=sid)
                        got_b = await theirs.get_session(
                            app_name="app", user_id=user, session_id=sid
                        )
                        assert _view(got_a) == _view(got_b), (step, user, sid)
                    assert await ours.get_user_state(
                        app_name="app", user_id=user
                    ) == await theirs.get_user_state(app_name="app", user_id=user)
                listed_a = await ours.list_sessions(app_name="app")
                listed_b = await theirs.list_sessions(app_name="app")
                key_a = sorted((s.user_id, s.id, str(s.state)) for s in listed_a.sessions)
                key_b = sorted((s.user_id, s.id, str(s.state)) for s in listed_b.sessions)
                assert key_a == key_b
        finally:
            await store.close()
            close = getattr(theirs, "close", None)
            if close is not None:
                await close()

    asyncio.run(main())


def test_racing_copies_one_lands_the_other_is_stale(store_url: str) -> None:
    async def body(service: EventlogSessionService) -> None:
        await service.create_session(app_name="a", user_id="u", session_id="s")
        for round_ in range(6):
            latest = await service.get_session(app_name="a", user_id="u", session_id="s")
            assert latest is not None
            copies = [latest.model_copy(deep=True) for _ in range(2)]
            outcomes = await asyncio.gather(
                *(
                    service.append_event(copy, _event(f"r{round_}-{n}", {f"k{round_}": n}))
                    for n, copy in enumerate(copies)
                ),
                return_exceptions=True,
            )
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            assert len(errors) == 1 and isinstance(errors[0], StaleSessionError), outcomes
        final = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert final is not None and len(final.events) == 6
        assert sorted(final.state) == [f"k{n}" for n in range(6)]

    _with_service(store_url, body)


def test_list_orders_by_last_activity_oldest_first(store_url: str) -> None:
    async def body(service: EventlogSessionService) -> None:
        for sid in ("a", "b", "c"):
            await service.create_session(app_name="a", user_id="u", session_id=sid)
        first = await service.get_session(app_name="a", user_id="u", session_id="a")
        assert first is not None
        await asyncio.sleep(0.01)
        await service.append_event(first, _event("wake"))
        listed = await service.list_sessions(app_name="a", user_id="u")
        assert [s.id for s in listed.sessions] == ["b", "c", "a"]
        assert listed.sessions[-1].last_update_time == first.last_update_time

    _with_service(store_url, body)


class _CheckpointEveryFour(EventlogSessionService):
    _checkpoint_every = 4


def _with_checkpoint_service(
    url: str, body: Callable[[EventlogSessionService, AsyncStore], Awaitable[None]]
) -> None:
    async def main() -> None:
        store = await eventlog.connect_async(url)
        try:
            await body(_CheckpointEveryFour(store), store)
        finally:
            await store.close()

    asyncio.run(main())


def test_state_checkpoints_bound_what_a_read_folds(store_url: str) -> None:
    key = "adk/a/u/s"

    async def body(service: EventlogSessionService, store: AsyncStore) -> None:
        s = await service.create_session(
            app_name="a", user_id="u", session_id="s", state={"kept": "from creation", "n": -1}
        )
        model: dict[str, Any] = {"kept": "from creation", "n": -1}
        for i in range(13):
            delta = {} if i % 3 == 2 else {"n": i, f"k{i % 2}": i}
            await service.append_event(s, _event(f"e{i}", delta))
            model.update(delta)
            got = await service.get_session(app_name="a", user_id="u", session_id="s")
            assert got is not None and got.state == model, i
        newest_first = await store.scan(key, id_prefix="r:")
        kinds = [e.kind for e in newest_first]
        # Versions 1 (creation), 4, 8 and 12 hold the whole state; newest first, the
        # newest checkpoint is within the first four entries a read takes.
        assert kinds.count("adk.state.full") == 4
        assert "adk.state.full" in kinds[:4]
        assert newest_first[kinds.index("adk.state.full")].payload == {
            "kept": "from creation",
            "n": 10,
            "k0": 10,
            "k1": 9,
        }

    _with_checkpoint_service(store_url, body)


def test_a_session_stored_before_checkpoints_reads_and_gets_one(store_url: str) -> None:
    key = "adk/a/u/old"

    async def body(service: EventlogSessionService, store: AsyncStore) -> None:
        # The layout of eventlog before state checkpoints: deltas s:<version>, oldest first.
        first = _event("old", {"n": 1}, ts=1000.0).model_dump(mode="json", exclude_none=True)
        await store.save_delta(
            key,
            eventlog.SessionDelta(
                new_entries=[
                    eventlog.Entry("c", None, "adk.created", "999.0", {}),
                    eventlog.Entry("s:000000000000", None, "adk.state", "999.0", {"kept": 1}),
                ],
                leaf_id="c",
            ),
        )
        await store.save_delta(
            key,
            eventlog.SessionDelta(
                new_entries=[
                    eventlog.Entry("e:000000000002", "c", "adk.event", "1000.0", first),
                    eventlog.Entry("s:000000000002", None, "adk.state", "1000.0", {"n": 1}),
                ],
                leaf_id="e:000000000002",
            ),
        )
        s = await service.get_session(app_name="a", user_id="u", session_id="old")
        assert s is not None and s.state == {"kept": 1, "n": 1}
        assert _texts(s) == ["old"]
        for i in range(2, 6):  # versions 3 to 6: version 4 writes the first checkpoint
            await service.append_event(s, _event(f"e{i}", {"n": i}))
            got = await service.get_session(app_name="a", user_id="u", session_id="old")
            assert got is not None and got.state == {"kept": 1, "n": i}, i
        newest_first = await store.scan(key, id_prefix="r:")
        kinds = [e.kind for e in newest_first]
        assert kinds == ["adk.state", "adk.state", "adk.state.full", "adk.state"]
        assert newest_first[2].payload == {"kept": 1, "n": 3}

    _with_checkpoint_service(store_url, body)


def test_app_and_user_state_checkpoints_and_the_old_layout(store_url: str) -> None:
    async def body(service: EventlogSessionService, store: AsyncStore) -> None:
        # The old layout of an app's state: deltas d:<uuid>, folded in the order written.
        await store.save_delta(
            "adk-app/a",
            eventlog.SessionDelta(
                new_entries=[
                    eventlog.Entry("d:ff", None, "adk.delta", "1.0", {"x": "old", "y": 0}),
                    eventlog.Entry("d:00", None, "adk.delta", "2.0", {"x": "newer"}),
                ]
            ),
        )
        s = await service.create_session(app_name="a", user_id="u", session_id="s")
        assert s.state == {"app:x": "newer", "app:y": 0}
        model = {"x": "newer", "y": 0}
        for i in range(9):  # the app session's versions 2 to 10: a checkpoint at 4 and 8
            await service.append_event(s, _event(f"e{i}", {"app:y": i, "user:z": i}))
            model["y"] = i
            got = await service.get_session(app_name="a", user_id="u", session_id="s")
            assert got is not None
            assert got.state == {**{f"app:{k}": v for k, v in model.items()}, "user:z": i}
        app_kinds = [e.kind for e in await store.scan("adk-app/a", id_prefix="r:")]
        assert app_kinds[:3] == ["adk.delta", "adk.delta", "adk.state.full"]
        user_kinds = [e.kind for e in await store.scan("adk-user/a/u", id_prefix="r:")]
        assert user_kinds[:2] == ["adk.delta", "adk.state.full"]  # versions 9 and 8
        assert user_kinds[-1] == "adk.state.full"  # the first write holds the whole state
        assert await service.get_user_state(app_name="a", user_id="u") == {"z": 8}

    _with_checkpoint_service(store_url, body)


def test_sessions_racing_on_one_apps_state_lose_no_delta(store_url: str) -> None:
    async def body(service: EventlogSessionService, store: AsyncStore) -> None:
        sessions = [
            await service.create_session(app_name="a", user_id=f"u{n}", session_id="s")
            for n in range(8)
        ]
        await asyncio.gather(
            *(
                service.append_event(s, _event("hi", {f"app:from{n}": n, "app:last": n}))
                for n, s in enumerate(sessions)
            )
        )
        got = await service.get_session(app_name="a", user_id="u0", session_id="s")
        assert got is not None
        assert {k: v for k, v in got.state.items() if k.startswith("app:from")} == {
            f"app:from{n}": n for n in range(8)
        }

    _with_checkpoint_service(store_url, body)


def test_a_full_read_follows_the_leaf_when_the_chain_was_changed_outside(
    store_url: str,
) -> None:
    async def body(service: EventlogSessionService, store: AsyncStore) -> None:
        s = await service.create_session(app_name="a", user_id="u", session_id="s")
        for i in range(3):
            await service.append_event(s, _event(f"e{i}", ts=1000.0 + i))
        got = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert _texts(got) == ["e0", "e1", "e2"]
        # The store's own API moves the leaf back to the second event (versions 2 to 4
        # are the three events): ADK then sees the branch that ends there.
        await store.save_delta("adk/a/u/s", eventlog.SessionDelta(leaf_id="e:000000000003"))
        got = await service.get_session(app_name="a", user_id="u", session_id="s")
        assert _texts(got) == ["e0", "e1"]
        assert got is not None and got.last_update_time == 1001.0

    _with_checkpoint_service(store_url, body)
