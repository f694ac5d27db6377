"""A Google ADK session service on any eventlog `AsyncStore`: `EventlogSessionService`.

Install with ``pip install eventlog[adk]``::

    import eventlog
    from google.adk.runners import Runner
    from eventlog.integrations.adk import EventlogSessionService

    store = await eventlog.connect_async("sqlite:///eventlog.db")
    runner = Runner(agent=agent, app_name="app", session_service=EventlogSessionService(store))

How ADK's data maps onto eventlog:

- An ADK session is the eventlog session ``adk/<app>/<user>/<session id>`` (each part
  percent-quoted), so ``list_sessions(prefix="adk/<app>/<user>/")`` lists exactly one
  user's sessions and ``adk/<app>/`` one app's.
- Its first entry ``c`` (kind ``adk.created``) carries the creation time; each event
  is the entry ``e:<version>`` (kind ``adk.event``, payload the event's JSON dump)
  parented by the one before, so the leaf is the newest event (or ``c``) and
  `path(limit=n)` reads the last n events without the rest.
- Session-scoped state is not rewritten on every change: each event's
  session-scoped delta is a root entry ``r:<countdown>`` (kind ``adk.state``), and
  the whole state is written as a checkpoint (kind ``adk.state.full``) at creation
  and at every 64th version. ``<countdown>`` is 10**12 minus the version, so
  ``scan(id_prefix="r:")`` reads newest first and stops at the newest checkpoint: a
  read folds at most 64 entries, however long the session. Sessions written before
  checkpoints (deltas ``s:<version>``, oldest first) fold those first; their next
  64th version writes a checkpoint.
- ``app:`` and ``user:`` deltas go to the sessions ``adk-app/<app>`` and
  ``adk-user/<app>/<user>``, one entry per delta, in the same ``r:<countdown>``
  layout with checkpoints (the first write and every 64th version), folded on read.
  Their writers race (every session of an app writes its app state), so each write
  names the version it read and retries when another landed first.
- The stale-session check is eventlog's version: a session object carries the
  version it was read or written at, and an append from an older one raises ADK's
  ``StaleSessionError`` (checked by ``save_delta(expected_version=...)``).

Choices and limits:

- ``last_update_time`` is the newest event's ``timestamp`` (the creation time before
  the first event), as ADK's in-memory and database services report it.
- An event and the ``app:``/``user:`` part of its delta are two writes (eventlog
  writes one session per transaction): the event first, then the scoped state.
- Session ids are stripped of surrounding whitespace, as ADK's in-memory service does.
- Events come back in the order they were appended (as ADK's in-memory service
  returns them); ADK's SQL services sort by (timestamp, id) instead, which differs
  only for events appended out of timestamp order.
- A state value that is not JSON raises eventlog's ``InvalidInputError`` and
  stores nothing; ADK's SQL services store such a value as its ``str()``.
- Stored events are rebuilt by ``decode_event`` (``_adk_events``), which skips
  pydantic's per-field work where a stored dump makes it a no-op (2-3x faster
  than ``Event.model_validate``, which it falls back to otherwise).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Final
from urllib.parse import quote, unquote

import msgspec
from google.adk.errors._stale_session_error import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.sessions import _session_util
from google.adk.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from google.adk.sessions.session import Session
from google.adk.sessions.state import State
from pydantic_core import PydanticSerializationError
from typing_extensions import override

from ..errors import ConcurrencyError, InvalidInputError
from ..errors import SessionNotFoundError as StoreSessionNotFoundError
from ..model import Entry, RawJSON, SessionDelta, SessionInfo
from ..store import AsyncStore
from ._adk_events import decode_event

__all__ = ["EventlogSessionService"]

PREFIX: Final = "adk/"
APP_PREFIX: Final = "adk-app/"
USER_PREFIX: Final = "adk-user/"

_CREATED: Final = "c"
_EVENT_KIND: Final = "adk.event"
_STATE_KIND: Final = "adk.state"
_STATE_FULL_KIND: Final = "adk.state.full"
_STATE_PREFIX: Final = "r:"
_LEGACY_STATE_PREFIX: Final = "s:"
_COUNTDOWN_FROM: Final = 10**12
_DELTA_KIND: Final = "adk.delta"
_PAGE: Final = 500
_BATCH: Final = 32
_decode_json: Final = msgspec.json.Decoder().decode
_STALE: Final = (
    "The session has been modified in storage since it was loaded. "
    "Please reload the session before appending more events."
)


def _q(part: str) -> str:
    return quote(part, safe="")


def _session_key(app_name: str, user_id: str, session_id: str) -> str:
    return f"{PREFIX}{_q(app_name)}/{_q(user_id)}/{_q(session_id)}"


def _app_key(app_name: str) -> str:
    return f"{APP_PREFIX}{_q(app_name)}"


def _user_key(app_name: str, user_id: str) -> str:
    return f"{USER_PREFIX}{_q(app_name)}/{_q(user_id)}"


def _seq(version: int) -> str:
    return f"{version:012d}"


def _state_id(version: int) -> str:
    """The id of the state entry written at `version`: newer ids sort first."""
    return f"{_STATE_PREFIX}{_COUNTDOWN_FROM - version:012d}"


def _json(value: dict[str, Any], *, session_id: str, where: str) -> dict[str, Any]:
    """A JSON-ready copy of a state dict, or a typed error naming where it failed."""
    try:
        dumped = Session(id="x", app_name="x", user_id="x", state=value).model_dump(
            mode="json", include={"state"}
        )
    except (PydanticSerializationError, ValueError, TypeError) as error:
        raise InvalidInputError(
            "state values must be JSON-serializable", session_id=session_id, where=where
        ) from error
    state: dict[str, Any] = dumped["state"]
    return state


def _event_payload(event: Event, session_id: str) -> dict[str, Any]:
    try:
        payload: dict[str, Any] = event.model_dump(mode="json", exclude_none=True)
    except (PydanticSerializationError, ValueError, TypeError) as error:
        raise InvalidInputError(
            "the event must be JSON-serializable", session_id=session_id, where="event"
        ) from error
    return payload


def _time(entry: Entry) -> float:
    return float(entry.timestamp) if entry.timestamp else 0.0


def _dict_payload(entry: Entry) -> Any:
    payload = entry.payload
    return _decode_json(payload) if isinstance(payload, RawJSON) else payload


def _strip(session_id: str | None) -> str | None:
    return session_id.strip() if session_id else session_id


def _fold(entries: list[Entry], kind: str, *, base: dict[str, Any] | None = None) -> dict[str, Any]:
    state: dict[str, Any] = dict(base or {})
    for entry in entries:
        if entry.kind == kind and isinstance(entry.payload, dict):
            state.update(entry.payload)
    return state


class EventlogSessionService(BaseSessionService):
    """ADK's ``BaseSessionService`` kept in an eventlog store.

    Args:
        store: any `AsyncStore` (``await eventlog.connect_async(url)``); not closed here.
    """

    #: Versions between two checkpoints of the session-scoped state.
    _checkpoint_every: int = 64

    def __init__(self, store: AsyncStore) -> None:
        self.store = store

    # -- scoped state -------------------------------------------------------------

    async def _scoped(self, key: str) -> dict[str, Any]:
        """An app's or a user's state: the newest checkpoint and the deltas after it."""
        # All ids at once: a missing session costs one read, and a d:<uuid> entry,
        # which sorts first, shows state written before checkpoints.
        found = await self._newest_checkpoint(key, _DELTA_KIND, id_prefix="")
        if found is not None:
            return found[0] if found[0] is not None else _fold(found[1], _DELTA_KIND)
        checkpointed = await self._newest_checkpoint(key, _DELTA_KIND)
        assert checkpointed is not None  # an r: scan meets only r: ids
        base, newer = checkpointed
        if base is not None:
            return base
        # No checkpoint yet: the old deltas, in the order written, then the new.
        data = await self.store.load(key)
        legacy = [] if data is None else [e for e in data.entries if e.id.startswith("d:")]
        return _fold(legacy + newer, _DELTA_KIND)

    async def _write_scoped(self, key: str, delta: dict[str, Any], timestamp: float) -> None:
        """Append an app's or a user's state delta (the whole state at checkpoints).

        Sessions of one app (or user) write here concurrently: a lost race reads the
        new version and tries again.
        """
        if not delta:
            return
        while True:
            info = await self.store.info(key)
            current = 0 if info is None else info.version
            version = current + 1
            if version == 1 or version % self._checkpoint_every == 0:
                # Read after `info`: a write since then makes the save below fail.
                state = await self._scoped(key)
                state.update(delta)
                entry = Entry(_state_id(version), None, _STATE_FULL_KIND, repr(timestamp), state)
            else:
                entry = Entry(_state_id(version), None, _DELTA_KIND, repr(timestamp), delta)
            try:
                await self.store.save_delta(
                    key, SessionDelta(new_entries=[entry]), expected_version=current
                )
            except ConcurrencyError:
                continue
            return

    async def _newest_checkpoint(
        self, key: str, kind: str, *, id_prefix: str = _STATE_PREFIX
    ) -> tuple[dict[str, Any] | None, list[Entry]] | None:
        """The state at `key`'s newest checkpoint folded with the `kind` deltas after it;
        without a checkpoint, None and every ``r:`` entry oldest first.

        Scans the ids starting with `id_prefix`; meeting one that is not ``r:``
        answers None (state stored before checkpoints).
        """
        newest_first: list[Entry] = []
        after: str | None = None
        while True:
            page = await self.store.scan(
                key, id_prefix=id_prefix, after_id=after, limit=self._checkpoint_every
            )
            for entry in page:
                if not entry.id.startswith(_STATE_PREFIX):
                    return None
                newest_first.append(entry)
                if entry.kind == _STATE_FULL_KIND and isinstance(entry.payload, dict):
                    return _fold(newest_first[::-1], kind, base=entry.payload), []
            if len(page) < self._checkpoint_every:
                return None, newest_first[::-1]
            after = page[-1].id

    async def _merged(self, app_name: str, user_id: str, state: dict[str, Any]) -> dict[str, Any]:
        merged = dict(state)
        for key, value in (await self._scoped(_app_key(app_name))).items():
            merged[State.APP_PREFIX + key] = value
        for key, value in (await self._scoped(_user_key(app_name, user_id))).items():
            merged[State.USER_PREFIX + key] = value
        return merged

    async def _chain(self, key: str, info: SessionInfo, limit: int | None) -> list[Entry]:
        """The events' chain, or the last `limit` of it plus one (the newest for limit 0).

        The whole chain is read as one scan of the event ids with payloads left as
        bytes: each is decoded just before its event is built, so a long session's
        payload dicts never pile up for the garbage collector. A chain this service
        did not write (a leaf moved, a branch) is walked with `path` instead.
        """
        if limit == 0:
            return [] if info.leaf_id is None else await self.store.path(key, limit=1)
        if limit is not None:
            return await self.store.path(key, limit=limit + 1)
        events = await self.store.scan(key, id_prefix="e:", raw=True)
        parent = _CREATED
        for event in events:
            if event.parent_id != parent or event.kind != _EVENT_KIND:
                break
            parent = event.id
        else:
            if events and parent == info.leaf_id:
                return events
        return await self.store.path(key)

    async def _merged_state(self, key: str, app_name: str, user_id: str) -> dict[str, Any]:
        """The session's state with the app's and the user's, their three reads together."""
        state, app, user = await asyncio.gather(
            self._session_state(key),
            self._scoped(_app_key(app_name)),
            self._scoped(_user_key(app_name, user_id)),
        )
        for k, v in app.items():
            state[State.APP_PREFIX + k] = v
        for k, v in user.items():
            state[State.USER_PREFIX + k] = v
        return state

    async def _session_state(self, key: str) -> dict[str, Any]:
        """The session-scoped state: the newest checkpoint and the deltas after it."""
        checkpointed = await self._newest_checkpoint(key, _STATE_KIND)
        assert checkpointed is not None  # an r: scan meets only r: ids
        base, newer = checkpointed
        if base is not None:
            return base
        # No checkpoint: a session from before them, its deltas s:<version> oldest first.
        legacy: list[Entry] = []
        after: str | None = None
        while True:
            page = await self.store.scan(
                key, id_prefix=_LEGACY_STATE_PREFIX, after_id=after, limit=_PAGE
            )
            legacy.extend(page)
            if len(page) < _PAGE:
                return _fold(legacy + newer, _STATE_KIND)
            after = page[-1].id

    # -- BaseSessionService -----------------------------------------------------

    @override
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        session_id = _strip(session_id) or str(uuid.uuid4())
        key = _session_key(app_name, user_id, session_id)
        deltas = _session_util.extract_state_delta(
            _json(state or {}, session_id=key, where="state")
        )
        now = time.time()
        entries = [
            Entry(_CREATED, None, "adk.created", repr(now), {}),
            Entry(_state_id(1), None, _STATE_FULL_KIND, repr(now), deltas["session"]),
        ]
        try:
            result = await self.store.save_delta(
                key,
                SessionDelta(new_entries=entries, leaf_id=_CREATED),
                expected_version=0,
            )
        except ConcurrencyError:
            raise AlreadyExistsError(f"Session with id {session_id} already exists.") from None
        await self._write_scoped(_app_key(app_name), deltas["app"], now)
        await self._write_scoped(_user_key(app_name, user_id), deltas["user"], now)
        session = Session(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=await self._merged(app_name, user_id, deltas["session"]),
            last_update_time=now,
        )
        session._storage_update_marker = str(result.version)
        return session

    @override
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        session_id = _strip(session_id) or session_id
        key = _session_key(app_name, user_id, session_id)
        info = await self.store.info(key)
        if info is None:
            return None
        limit = None if config is None else config.num_recent_events
        # Read after `info`, so these see its version or a newer one: a session
        # whose marker is older than its events can only be refused as stale.
        try:
            chain, state = await asyncio.gather(
                self._chain(key, info, limit), self._merged_state(key, app_name, user_id)
            )
        except StoreSessionNotFoundError:  # deleted since `info`
            return None
        last = _time(chain[-1]) if chain else 0.0
        entries = [entry for entry in chain if entry.kind == _EVENT_KIND]
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
        events = [decode_event(_dict_payload(entry)) for entry in entries]
        if config is not None and config.after_timestamp is not None:
            i = len(events) - 1
            while i >= 0 and events[i].timestamp >= config.after_timestamp:
                i -= 1
            events = events[i + 1 :]
        session = Session(
            app_name=app_name,
            user_id=user_id,
            id=session_id,
            state=state,
            events=events,
            last_update_time=last,
        )
        session._storage_update_marker = str(info.version)
        return session

    @staticmethod
    def _listed(info: SessionInfo) -> tuple[str, str, str] | None:
        parts = info.session_id.removeprefix(PREFIX).split("/")
        if len(parts) != 3 or info.leaf_id is None:
            return None
        app, user, sid = (unquote(part) for part in parts)
        return app, user, sid

    async def _listed_session(
        self, info: SessionInfo, app: str, user: str, sid: str
    ) -> tuple[Session, str] | None:
        """One listed session without its scoped state (its leaf and state read together)."""
        assert info.leaf_id is not None  # _listed skips sessions without one
        leaf, state = await asyncio.gather(
            self.store.entry(info.session_id, info.leaf_id),
            self._session_state(info.session_id),
        )
        if leaf is None:  # deleted between the listing and this read
            return None
        session = Session(
            app_name=app, user_id=user, id=sid, state=state, last_update_time=_time(leaf)
        )
        session._storage_update_marker = str(info.version)
        return session, user

    @override
    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        prefix = f"{PREFIX}{_q(app_name)}/"
        if user_id is not None:
            prefix += f"{_q(user_id)}/"
        infos: list[SessionInfo] = []
        cursor: str | None = None
        while True:
            page = await self.store.list_sessions(prefix=prefix, limit=_PAGE, cursor=cursor)
            infos.extend(page.items)
            cursor = page.next_cursor
            if cursor is None:
                break
        found = [(info, names) for info in infos if (names := self._listed(info)) is not None]
        users = sorted({user for _, (_, user, _) in found})
        # The app's and users' scoped state are read beside the first batch of
        # sessions, each batch's reads together (a batch at a time, so a listing of
        # thousands does not hold the pool).
        scoped_reads = [
            self._scoped(_app_key(app_name)),
            *(self._scoped(_user_key(app_name, user)) for user in users),
        ]
        first = await asyncio.gather(
            *scoped_reads, *(self._listed_session(info, *names) for info, names in found[:_BATCH])
        )
        scoped: list[dict[str, Any]] = first[: len(scoped_reads)]
        listed: list[tuple[Session, str] | None] = first[len(scoped_reads) :]
        for start in range(_BATCH, len(found), _BATCH):
            batch = found[start : start + _BATCH]
            listed.extend(
                await asyncio.gather(*(self._listed_session(info, *names) for info, names in batch))
            )
        app_state, user_states = scoped[0], dict(zip(users, scoped[1:], strict=True))
        sessions: list[Session] = []
        for item in listed:
            if item is None:
                continue
            session, user = item
            for k, v in app_state.items():
                session.state[State.APP_PREFIX + k] = v
            for k, v in user_states[user].items():
                session.state[State.USER_PREFIX + k] = v
            sessions.append(session)
        sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
        return ListSessionsResponse(sessions=sessions)

    @override
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        session_id = _strip(session_id) or session_id
        await self.store.delete(_session_key(app_name, user_id, session_id))

    @override
    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return await self._scoped(_user_key(app_name, user_id))

    @override
    async def append_event(self, session: Session, event: Event) -> Event:
        if event.partial:
            return event
        key = _session_key(session.app_name, session.user_id, session.id)
        info = await self.store.info(key)
        if info is None:
            raise SessionNotFoundError(f"Session {session.id} not found.")
        marker = session._storage_update_marker
        if marker is not None and marker != str(info.version):
            raise StaleSessionError(_STALE)
        # Checked before the caller's session or event is touched: a bad value
        # leaves both (and the store) as they were.
        delta = event.actions.state_delta if event.actions else {}
        kept = {k: v for k, v in delta.items() if not k.startswith(State.TEMP_PREFIX)}
        deltas = _session_util.extract_state_delta(_json(kept, session_id=key, where="event"))
        stored = event
        if len(kept) != len(delta):  # temp: values are never stored, JSON or not
            actions = event.actions.model_copy(update={"state_delta": kept})
            stored = event.model_copy(update={"actions": actions})
        payload = _event_payload(stored, key)
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        version = info.version + 1
        stamp = repr(event.timestamp)
        entries = [Entry(f"e:{_seq(version)}", info.leaf_id, _EVENT_KIND, stamp, payload)]
        if version % self._checkpoint_every == 0:
            # Read after `info`: a write since then makes the save below stale, so
            # a checkpoint never holds another version's state.
            state = await self._session_state(key)
            state.update(deltas["session"])
            entries.append(Entry(_state_id(version), None, _STATE_FULL_KIND, stamp, state))
        elif deltas["session"]:
            entries.append(Entry(_state_id(version), None, _STATE_KIND, stamp, deltas["session"]))
        try:
            result = await self.store.save_delta(
                key,
                SessionDelta(new_entries=entries, leaf_id=entries[0].id),
                expected_version=info.version,
            )
        except ConcurrencyError:
            raise StaleSessionError(_STALE) from None
        await self._write_scoped(_app_key(session.app_name), deltas["app"], event.timestamp)
        await self._write_scoped(
            _user_key(session.app_name, session.user_id), deltas["user"], event.timestamp
        )
        self._commit_event_to_session(session, event)
        session.last_update_time = event.timestamp
        session._storage_update_marker = str(result.version)
        return event
