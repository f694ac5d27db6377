"""Peers: other libraries' session stores, driven through the same turns as eventlog.

Measured in the same run when the `bench-peers` extra is installed; `discover`
says which import and why the others do not. Each peer gets its own database
(a SQLite file, or a Postgres schema) from its `Target`, like the contenders.

- eventsourcing: the library's application recorder (`PostgresApplicationRecorder`
  on Postgres, which locks its table per insert for gapless notification ids;
  `SQLiteApplicationRecorder` on SQLite) fed `StoredEvent`s through
  `insert_events`. That is the lowest-overhead public API: the Application and
  Aggregate layers above it add object mapping and transcoding to the same
  `insert_events` call. A session is one stream (`originator_id_type="text"`,
  originator id = session id), each entry one event whose state is the entry's
  JSON; versions are counted here as an aggregate would count them. Load is
  `select_events` of the whole stream and a decode of every state.
- agents_sqlalchemy: the OpenAI Agents SDK's `SQLAlchemySession` (module
  `agents.extensions.memory.sqlalchemy_session`) on one async engine per database
  (`postgresql+asyncpg`, or `sqlite+aiosqlite`), one session object per session
  id, `add_items` of the turn's payloads per turn (an SDK item is the message
  itself: no entry ids or parents) and `get_items` to load. The SDK is async; a
  private event loop (`asyncio.Runner`) drives it, so a turn costs what it
  costs a synchronous caller.
"""

from __future__ import annotations

import asyncio
import importlib
from importlib.metadata import version
from typing import TYPE_CHECKING, cast

import msgspec

from eventlog import Entry

from .contenders import Contender, Target

if TYPE_CHECKING:
    from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession
    from agents.items import TResponseInputItem
    from eventsourcing.persistence import ApplicationRecorder
    from eventsourcing.postgres import PostgresDatastore
    from eventsourcing.sqlite import SQLiteDatastore

__all__ = [
    "PEERS",
    "EventsourcingContender",
    "OpenAIAgentsSQLAlchemyContender",
    "Peer",
    "discover",
]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def _conninfo(dsn: str) -> dict[str, str]:
    """A DSN's connection parameters (URI or key=value form).

    The peers' drivers get its host, port, user, password and dbname only.
    """
    from psycopg.conninfo import conninfo_to_dict

    return {key: str(value) for key, value in conninfo_to_dict(dsn).items()}


class Peer(Contender):
    """A contender backed by another library, measured only when it imports."""

    library: str  # distribution name, for the version in the report
    requires: tuple[str, ...]  # modules that must import for the peer to run
    api: str  # what of the library is measured

    def describe(self) -> str:
        return f"{self.library} {version(self.library)}, {self.api}"


class EventsourcingContender(Peer):
    name = "eventsourcing"
    library = "eventsourcing"
    requires = ("eventsourcing.postgres", "eventsourcing.sqlite")

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        from eventsourcing.persistence import StoredEvent
        from eventsourcing.utils import get_topic

        self._stored_event = StoredEvent
        self._topic = get_topic(Entry)
        self._versions: dict[str, int] = {}
        self._datastore: SQLiteDatastore | PostgresDatastore
        self.recorder: ApplicationRecorder
        if target.backend == "sqlite":
            from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

            self._datastore = SQLiteDatastore(target.location, originator_id_type="text")
            self.recorder = SQLiteApplicationRecorder(self._datastore)
        else:
            from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

            info = _conninfo(target.location)
            self._datastore = PostgresDatastore(
                info.get("dbname", ""),
                info.get("host", ""),
                info.get("port", ""),
                info.get("user", ""),
                info.get("password", ""),
                schema=target.schema or "",
                originator_id_type="text",
            )
            self.recorder = PostgresApplicationRecorder(self._datastore)
        self.api = type(self.recorder).__name__ + ".insert_events"
        self.recorder.create_table()

    def append_turn(self, session_id: str, entries: list[Entry]) -> None:
        last = self._versions.get(session_id, 0)
        self.recorder.insert_events(
            [
                self._stored_event(session_id, last + offset, self._topic, _encoder.encode(entry))
                for offset, entry in enumerate(entries, 1)
            ]
        )
        self._versions[session_id] = last + len(entries)

    def load(self, session_id: str) -> int:
        fields = [_decoder.decode(event.state) for event in self.recorder.select_events(session_id)]
        entries = [
            Entry(f["id"], f["parent_id"], f["kind"], f["timestamp"], f["payload"]) for f in fields
        ]
        return len(entries)

    def close(self) -> None:
        self._datastore.close()


class OpenAIAgentsSQLAlchemyContender(Peer):
    name = "agents_sqlalchemy"
    library = "openai-agents"
    requires = ("agents.extensions.memory.sqlalchemy_session", "greenlet", "asyncpg", "aiosqlite")

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        from sqlalchemy import URL
        from sqlalchemy.ext.asyncio import create_async_engine

        self._runner = asyncio.Runner()
        self._sessions: dict[str, SQLAlchemySession] = {}
        if target.backend == "sqlite":
            self.engine = create_async_engine(f"sqlite+aiosqlite:///{target.location}")
        else:
            info = _conninfo(target.location)
            url = URL.create(
                "postgresql+asyncpg",
                username=info.get("user"),
                password=info.get("password"),
                host=info.get("host"),
                port=int(info["port"]) if "port" in info else None,
                database=info.get("dbname"),
            )
            self.engine = create_async_engine(
                url, connect_args={"server_settings": {"search_path": target.schema or "public"}}
            )
        self.api = f"SQLAlchemySession on {self.engine.url.drivername}"

    def _session(self, session_id: str) -> SQLAlchemySession:
        session = self._sessions.get(session_id)
        if session is None:
            from agents.extensions.memory.sqlalchemy_session import SQLAlchemySession

            session = SQLAlchemySession(session_id, engine=self.engine, create_tables=True)
            self._sessions[session_id] = session
        return session

    def append_turn(self, session_id: str, entries: list[Entry]) -> None:
        items = cast("list[TResponseInputItem]", [entry.payload for entry in entries])
        self._runner.run(self._session(session_id).add_items(items))

    def load(self, session_id: str) -> int:
        return len(self._runner.run(self._session(session_id).get_items()))

    def close(self) -> None:
        try:
            self._runner.run(self.engine.dispose())
        finally:
            self._runner.close()


PEERS: tuple[type[Peer], ...] = (EventsourcingContender, OpenAIAgentsSQLAlchemyContender)


def discover() -> tuple[dict[str, type[Peer]], dict[str, str]]:
    """The peers whose packages import, and for each other one the import error."""
    found: dict[str, type[Peer]] = {}
    missing: dict[str, str] = {}
    for peer in PEERS:
        try:
            for module in peer.requires:
                importlib.import_module(module)
        except ImportError as exc:
            missing[peer.name] = str(exc)
        else:
            found[peer.name] = peer
    return found, missing
