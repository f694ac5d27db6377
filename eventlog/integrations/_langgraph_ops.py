"""The LangGraph checkpointer's operations, free of IO (see `eventlog.integrations.langgraph`).

Each operation is a generator that yields typed store requests (`Info`, `GetEntry`,
`Scan`, ...) and receives their results; `EventlogSaver` answers them with a
sync `Store`, `AsyncEventlogSaver` with an `AsyncStore`. A store error is thrown
back into the generator at the ``yield`` that asked for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar, cast
from urllib.parse import quote, unquote

import msgspec
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import ConcurrencyError, IdConflictError, SessionExistsError
from ..model import Entry, Page, SessionData, SessionDelta, SessionInfo
from ._langgraph_messages import (
    MESSAGE_PREFIX,
    ChainMemory,
    Segment,
    memory_from_entries,
    plan_chain,
)

CHECKPOINT_PREFIX: Final = "c:"
WRITE_PREFIX: Final = "w:"
BLOB_PREFIX: Final = "b:"
INLINE_LIMIT: Final = 512
"""Serialized values up to this many bytes live in the checkpoint entry; larger ones are blobs."""
MAX_SESSION_ID_BYTES: Final = 255
_OVERWRITE_ATTEMPTS: Final = 20
_KNOWN_SESSIONS: Final = 1024
"""How many sessions' channel memories a saver keeps (least recently used dropped)."""

T = TypeVar("T")


# --- requests ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Info:
    """The session's index row (`SessionInfo`, for its leaf), or ``None``."""

    session_id: str


@dataclass(frozen=True, slots=True)
class GetEntry:
    """The live entry with that id, or ``None``."""

    session_id: str
    entry_id: str


@dataclass(frozen=True, slots=True)
class Scan:
    """Live entries whose id starts with `prefix`, in id order, after `after_id`."""

    session_id: str
    prefix: str
    after_id: str | None = None
    limit: int | None = None
    raw: bool = False


@dataclass(frozen=True, slots=True)
class Path:
    """The last `limit` entries of the branch that ends at `leaf_id`."""

    session_id: str
    leaf_id: str
    limit: int


@dataclass(frozen=True, slots=True)
class SaveDelta:
    session_id: str
    delta: SessionDelta


@dataclass(frozen=True, slots=True)
class SaveSnapshot:
    session_id: str
    data: SessionData
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Load:
    session_id: str


@dataclass(frozen=True, slots=True)
class ListSessions:
    prefix: str
    cursor: str | None


@dataclass(frozen=True, slots=True)
class Fork:
    source_id: str
    new_id: str


@dataclass(frozen=True, slots=True)
class Delete:
    session_id: str


Request: TypeAlias = (
    Info | GetEntry | Scan | Path | SaveDelta | SaveSnapshot | Load | ListSessions | Fork | Delete
)
Op: TypeAlias = Generator[Request, Any, T]


def _info(sid: str) -> Op[SessionInfo | None]:
    return cast("SessionInfo | None", (yield Info(sid)))


def _entry(sid: str, entry_id: str) -> Op[Entry | None]:
    return cast("Entry | None", (yield GetEntry(sid, entry_id)))


def _scan(
    sid: str,
    prefix: str,
    after_id: str | None = None,
    limit: int | None = None,
    *,
    raw: bool = False,
) -> Op[list[Entry]]:
    return cast("list[Entry]", (yield Scan(sid, prefix, after_id, limit, raw)))


def _path(sid: str, leaf_id: str, limit: int) -> Op[list[Entry]]:
    return cast("list[Entry]", (yield Path(sid, leaf_id, limit)))


def _sessions(prefix: str) -> Op[list[str]]:
    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = cast(Page, (yield ListSessions(prefix, cursor)))
        ids.extend(info.session_id for info in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return ids


# --- ids --------------------------------------------------------------------


def _q(text: str) -> str:
    return quote(text, safe="")


def checkpoint_entry_id(checkpoint_id: str) -> str:
    return CHECKPOINT_PREFIX + _q(checkpoint_id)


def _writes_prefix(checkpoint_id: str) -> str:
    return f"{WRITE_PREFIX}{_q(checkpoint_id)}:"


def _leaf_checkpoint(leaf: str | None) -> str | None:
    """The checkpoint entry id a session leaf stands for (a write leaf names its checkpoint)."""
    if leaf is None or not leaf.startswith(WRITE_PREFIX):
        return leaf
    # Quoted checkpoint ids hold no ':' (`_q` quotes it), so the first one ends it.
    return CHECKPOINT_PREFIX + leaf[len(WRITE_PREFIX) :].partition(":")[0]


def _payload(entry: Entry) -> dict[str, Any]:
    return cast("dict[str, Any]", entry.payload)


class _Encoded(msgspec.Struct, frozen=True):
    """A serialized value as `SaverCore.encode` stores it: serde type and bytes (base64)."""

    t: str
    b: bytes


_ENCODED_LIST: Final = msgspec.json.Decoder(list[_Encoded])


def _thread_id(config: RunnableConfig) -> str:
    configurable = config.get("configurable") or {}
    if "thread_id" not in configurable:
        # What LangGraph's own savers raise for a config without a thread.
        raise KeyError("thread_id")
    return str(configurable["thread_id"])


@dataclass
class _ChannelMemory:
    """The last stored (or read) value of one channel: its version, object and recorded form."""

    version: object
    value: Any
    form: dict[str, Any]
    chain: ChainMemory | None = None


class SaverCore:
    """The shared state and the operations of both savers.

    Args:
        serde: the saver's serializer (``dumps_typed`` / ``loads_typed``).
        prefix: the session id prefix of every LangGraph thread.
    """

    def __init__(self, serde: SerializerProtocol, prefix: str) -> None:
        self.serde = serde
        self.prefix = prefix
        self._lock = threading.Lock()
        # session id -> channel -> [last stored, last read]
        self._memory: OrderedDict[str, dict[str, list[_ChannelMemory | None]]] = OrderedDict()

    # --- session ids ---------------------------------------------------------

    def session_id(self, thread_id: str, checkpoint_ns: str) -> str:
        sid = f"{self.thread_prefix(thread_id)}{_q(checkpoint_ns)}"
        if len(sid.encode()) > MAX_SESSION_ID_BYTES:
            raise ValueError(
                "thread_id and checkpoint_ns are too long for an eventlog session id "
                f"({MAX_SESSION_ID_BYTES} bytes once quoted); thread_id={thread_id[:64]!r}"
            )
        return sid

    def thread_prefix(self, thread_id: str) -> str:
        return f"{self.prefix}{_q(thread_id)}/"

    def parse_session_id(self, sid: str) -> tuple[str, str]:
        thread, _, ns = sid.removeprefix(self.prefix).partition("/")
        return unquote(thread), unquote(ns)

    # --- serialization -------------------------------------------------------

    def encode(self, value: Any) -> dict[str, str]:
        type_, data = self.serde.dumps_typed(value)
        return {"t": type_, "b": base64.b64encode(data).decode("ascii")}

    def decode(self, payload: Mapping[str, Any]) -> Any:
        return self.serde.loads_typed((payload["t"], base64.b64decode(payload["b"])))

    def decode_many(self, payloads: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Decode many values; msgpack ones in one call, as one array (as fast as a list blob)."""
        # a2b_base64 takes the ASCII str as it is (b64decode re-encodes it first).
        return self._decode_typed(
            [p["t"] for p in payloads], [binascii.a2b_base64(p["b"]) for p in payloads]
        )

    def decode_raw_many(self, payloads: Sequence[bytes]) -> list[Any]:
        """`decode_many` of payloads as JSON bytes (``scan(raw=True)``): one JSON parse for all.

        msgspec reads every payload of the array and its base64 in one call, into
        typed values; the dict payloads and a Python base64 call per value are
        what this saves over `decode_many` on a resume of a long thread.
        """
        if not payloads:
            return []
        encoded = _ENCODED_LIST.decode(b"[" + b",".join(payloads) + b"]")
        return self._decode_typed([e.t for e in encoded], [e.b for e in encoded])

    def _decode_typed(self, types: Sequence[str], bodies: Sequence[bytes]) -> list[Any]:
        """The serde's values of (type, bytes) pairs; all msgpack: one call, as one array."""
        if bodies and all(t == "msgpack" for t in types):
            value = self.serde.loads_typed(
                ("msgpack", _array_header(len(bodies)) + b"".join(bodies))
            )
            if type(value) is list and len(value) == len(bodies):
                return value
        return [self.serde.loads_typed(pair) for pair in zip(types, bodies, strict=True)]

    # --- memory --------------------------------------------------------------

    def _recall(self, sid: str, channel: str) -> list[_ChannelMemory]:
        with self._lock:
            channels = self._memory.get(sid)
            if channels is None:
                return []
            self._memory.move_to_end(sid)
            return [m for m in channels.get(channel, ()) if m is not None]

    def _remember(self, sid: str, channel: str, memory: _ChannelMemory, *, read: bool) -> None:
        with self._lock:
            channels = self._memory.setdefault(sid, {})
            self._memory.move_to_end(sid)
            slots = channels.setdefault(channel, [None, None])
            slots[1 if read else 0] = memory
            while len(self._memory) > _KNOWN_SESSIONS:
                self._memory.popitem(last=False)

    def forget(self, sids: Iterable[str]) -> None:
        with self._lock:
            for sid in sids:
                self._memory.pop(sid, None)

    # --- put -----------------------------------------------------------------

    def _plan_value(
        self, sid: str, channel: str, version: object, value: Any
    ) -> tuple[dict[str, Any], list[Entry], _ChannelMemory | None]:
        """The recorded form of one channel value, the entries it needs, what to remember."""
        known = self._recall(sid, channel)
        for memory in known:
            if memory.value is value and memory.version == version:
                return memory.form, [], None
        plan = plan_chain(value, [m.chain for m in known if m.chain is not None], self.encode)
        if plan is not None:
            form: dict[str, Any] = {"messages": [list(s) for s in plan.segments]}
            return form, plan.new_entries, _ChannelMemory(version, value, form, plan.memory)
        encoded = self.encode(value)
        if len(encoded["b"]) <= INLINE_LIMIT:
            form = {"inline": encoded}
            return form, [], _ChannelMemory(version, value, form)
        blob_id = BLOB_PREFIX + _digest(encoded)
        form = {"blob": blob_id}
        entry = Entry(id=blob_id, kind="blob", payload=encoded)
        return form, [entry], _ChannelMemory(version, value, form)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Op[RunnableConfig]:
        thread_id = _thread_id(config)
        configurable = config["configurable"]
        ns = str(configurable.get("checkpoint_ns") or "")
        sid = self.session_id(thread_id, ns)
        parent_id = configurable.get("checkpoint_id")
        checkpoint_id = str(checkpoint["id"])
        entries: list[Entry] = []
        forms: dict[str, dict[str, Any]] = {}
        memories: list[tuple[str, _ChannelMemory]] = []
        versions = checkpoint["channel_versions"]
        for channel, value in checkpoint["channel_values"].items():
            version = versions.get(channel, new_versions.get(channel))
            form, needed, memory = self._plan_value(sid, channel, version, value)
            forms[channel] = form
            entries.extend(needed)
            if memory is not None:
                memories.append((channel, memory))
        rest = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        stored_metadata = get_checkpoint_metadata(config, metadata)
        run_id = stored_metadata.get("run_id")
        entry_id = checkpoint_entry_id(checkpoint_id)
        entries.append(
            Entry(
                id=entry_id,
                parent_id=checkpoint_entry_id(str(parent_id)) if parent_id else None,
                kind="checkpoint",
                timestamp=str(checkpoint.get("ts") or "") or None,
                payload={
                    "checkpoint": self.encode(rest),
                    "metadata": self.encode(stored_metadata),
                    "parent": str(parent_id) if parent_id else None,
                    "run_id": str(run_id) if run_id is not None else None,
                    "values": forms,
                },
            )
        )
        # The newest put is the leaf; a racing older one is caught by the read's scan.
        try:
            yield SaveDelta(sid, SessionDelta(new_entries=entries, leaf_id=entry_id))
        except IdConflictError:
            # The checkpoint id was stored with other content: LangGraph's savers
            # overwrite it. Rare (blob and message ids are content digests), so the
            # whole session is rewritten, under optimistic locking.
            yield from self._overwrite(sid, entries, entry_id)
        for channel, memory in memories:
            self._remember(sid, channel, memory, read=False)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }

    def _overwrite(self, sid: str, entries: list[Entry], leaf_id: str) -> Op[None]:
        for _ in range(_OVERWRITE_ATTEMPTS):
            data = cast("SessionData | None", (yield Load(sid)))
            current = [] if data is None else list(data.entries)
            incoming = {e.id: e for e in entries}
            merged = [incoming.pop(e.id, e) for e in current] + list(incoming.values())
            snapshot = SessionData(
                entries=merged,
                leaf_id=leaf_id,
                metadata={} if data is None else data.metadata,
            )
            try:
                yield SaveSnapshot(sid, snapshot, 0 if data is None else data.version)
            except ConcurrencyError:
                continue
            return
        raise ConcurrencyError(
            f"eventlog session {sid!r}: checkpoint overwrite kept racing other writers",
            session_id=sid,
        )

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Op[None]:
        thread_id = _thread_id(config)
        configurable = config["configurable"]
        ns = str(configurable.get("checkpoint_ns") or "")
        sid = self.session_id(thread_id, ns)
        checkpoint_id = str(configurable["checkpoint_id"])
        base = f"{_writes_prefix(checkpoint_id)}{_q(str(task_id))}:"
        entries: list[Entry] = []
        for index, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, index)
            # Special writes (errors, interrupts...) replace earlier ones: a new id each
            # time, the newest wins on read. Regular writes are kept once per (task, idx).
            entry_id = f"{base}{idx}" if idx >= 0 else f"{base}{idx}:{uuid6()}"
            payload = {
                "task": str(task_id),
                "path": task_path,
                "channel": channel,
                "idx": idx,
                "value": self.encode(value),
            }
            parent = checkpoint_entry_id(checkpoint_id)
            entries.append(Entry(id=entry_id, parent_id=parent, kind="write", payload=payload))
        if not entries:
            return
        # The last write becomes the leaf: a delta whose leaf is one of its own new
        # entries is one round trip (a kept leaf needs its record read first, two
        # more), and `_latest` finds the checkpoint from a write leaf as well.
        try:
            yield SaveDelta(sid, SessionDelta(new_entries=entries, leaf_id=entries[-1].id))
        except IdConflictError:
            existing = {e.id for e in (yield from _scan(sid, base))}
            fresh = [e for e in entries if e.id not in existing]
            if fresh:
                yield SaveDelta(sid, SessionDelta(new_entries=fresh, leaf_id=fresh[-1].id))

    # --- reads ---------------------------------------------------------------

    def _read_value(
        self,
        sid: str,
        channel: str,
        version: object,
        form: Mapping[str, Any],
        *,
        latest: bool,
    ) -> Op[Any]:
        """Read one recorded channel value (`latest`: of the thread's latest checkpoint)."""
        if "inline" in form:
            return self.decode(form["inline"])
        if "blob" in form:
            blob = yield from _entry(sid, form["blob"])
            if blob is None:
                raise LookupError(f"eventlog session {sid!r}: blob {form['blob']!r} is missing")
            return self.decode(_payload(blob))
        for memory in self._recall(sid, channel):
            if memory.chain is not None and memory.form == form:
                # The same segments are the same bytes (entry ids are digests of
                # the content and its predecessors): the list this saver stored or
                # read is the value, without reading and decoding it again. A
                # graph's every invoke starts with this read of the latest.
                # The chain's own copy: a reducer that extends lists in place
                # cannot change what this returns.
                return list(memory.chain.objs)
        segments: list[Segment] = [(str(t), int(n)) for t, n in form["messages"]]
        total = sum(count for _, count in segments)
        entries: list[Entry] = []
        # The latest list is most often every message of the thread. If the session
        # holds at most twice its messages, one scan of them all and a walk of the
        # parent links here beat a walk on the server per segment (13 ms against 22
        # for 1,080 here). A list trimmed to a few of many messages reads at most
        # twice its length in vain, then walks by path; older checkpoints (history,
        # time travel) hold shorter lists, so they walk by path at once.
        bound = 2 * total
        scanned = (
            (yield from _scan(sid, MESSAGE_PREFIX, limit=bound + 1, raw=True)) if latest else None
        )
        if scanned is not None and len(scanned) <= bound:
            by_id = {e.id: e for e in scanned}
            for tail, count in segments:
                entries.extend(_walk_back(sid, by_id, tail, count))
            value = self.decode_raw_many([cast(bytes, e.payload) for e in entries])
        else:
            for tail, count in segments:
                part = yield from _path(sid, tail, count)
                if len(part) != count:
                    raise _chain_broken(sid, tail, len(part), count)
                entries.extend(part)
            value = self.decode_many([_payload(e) for e in entries])
        chain = memory_from_entries(list(value), entries)
        self._remember(sid, channel, _ChannelMemory(version, value, dict(form), chain), read=True)
        return value

    def _tuple(self, sid: str, entry: Entry, *, latest: bool = False) -> Op[CheckpointTuple]:
        thread_id, ns = self.parse_session_id(sid)
        payload = _payload(entry)
        checkpoint = cast(Checkpoint, self.decode(payload["checkpoint"]))
        versions = checkpoint.get("channel_versions", {})
        values: dict[str, Any] = {}
        for channel, form in payload["values"].items():
            version = versions.get(channel)
            values[channel] = yield from self._read_value(
                sid, channel, version, form, latest=latest
            )
        checkpoint["channel_values"] = values
        checkpoint_id = checkpoint["id"]
        writes = yield from _scan(sid, _writes_prefix(checkpoint_id))
        parent = payload.get("parent")
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint=checkpoint,
            metadata=cast(CheckpointMetadata, self.decode(payload["metadata"])),
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": ns,
                        "checkpoint_id": parent,
                    }
                }
                if parent
                else None
            ),
            pending_writes=self._pending_writes(writes),
        )

    def _pending_writes(self, writes: Sequence[Entry]) -> list[PendingWrite]:
        newest: dict[tuple[str, int], Entry] = {}
        for entry in writes:
            p = _payload(entry)
            key = (str(p["task"]), int(p["idx"]))
            held = newest.get(key)
            if held is None or entry.id > held.id:
                newest[key] = entry
        ordered = sorted(
            newest.values(),
            key=lambda e: (
                str(_payload(e)["path"]),
                str(_payload(e)["task"]),
                int(_payload(e)["idx"]),
            ),
        )
        return [
            (
                str(_payload(e)["task"]),
                str(_payload(e)["channel"]),
                self.decode(_payload(e)["value"]),
            )
            for e in ordered
        ]

    def _latest(self, sid: str) -> Op[Entry | None]:
        info = yield from _info(sid)
        leaf = None if info is None else info.leaf_id
        # The latest checkpoint is the greatest id (as in LangGraph's savers). The
        # leaf is the last put checkpoint or the last write of one; scanning from
        # just before that checkpoint's id returns it and anything a racing put
        # stored after it, in one read.
        anchor = _leaf_checkpoint(leaf)
        if anchor is not None:
            candidates = yield from _scan(sid, CHECKPOINT_PREFIX, anchor[:-1])
            if candidates:
                return candidates[-1]
        # No leaf, or writes for a checkpoint that was never put (stored, read by
        # nobody) left the leaf past every checkpoint: all of them, once.
        candidates = yield from _scan(sid, CHECKPOINT_PREFIX)
        return candidates[-1] if candidates else None

    def get_tuple(self, config: RunnableConfig) -> Op[CheckpointTuple | None]:
        thread_id = _thread_id(config)
        configurable = config["configurable"]
        sid = self.session_id(thread_id, str(configurable.get("checkpoint_ns") or ""))
        checkpoint_id = configurable.get("checkpoint_id")
        if checkpoint_id:
            entry = yield from _entry(sid, checkpoint_entry_id(str(checkpoint_id)))
        else:
            entry = yield from self._latest(sid)
        if entry is None:
            return None
        return (yield from self._tuple(sid, entry, latest=not checkpoint_id))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Op[list[CheckpointTuple]]:
        configurable = (config or {}).get("configurable") or {}
        if "thread_id" in configurable:
            thread_id = str(configurable["thread_id"])
            ns = configurable.get("checkpoint_ns")
            if ns is not None:
                sids = [self.session_id(thread_id, str(ns))]
            else:
                sids = yield from _sessions(self.thread_prefix(thread_id))
        else:
            sids = yield from _sessions(self.prefix)
        only = configurable.get("checkpoint_id")
        before_id = ((before or {}).get("configurable") or {}).get("checkpoint_id")
        result: list[CheckpointTuple] = []
        for sid in sids:
            entries = yield from _scan(sid, CHECKPOINT_PREFIX)
            for entry in reversed(entries):
                if limit is not None and len(result) >= limit:
                    return result
                payload = _payload(entry)
                checkpoint_id = unquote(entry.id.removeprefix(CHECKPOINT_PREFIX))
                if only and checkpoint_id != str(only):
                    continue
                if before_id and checkpoint_id >= str(before_id):
                    continue
                if filter:
                    metadata = self.decode(payload["metadata"])
                    if not all(metadata.get(k) == v for k, v in filter.items()):
                        continue
                result.append((yield from self._tuple(sid, entry)))
        return result

    # --- deletes, copies -----------------------------------------------------

    def delete_thread(self, thread_id: str) -> Op[None]:
        sids = yield from _sessions(self.thread_prefix(str(thread_id)))
        for sid in sids:
            yield Delete(sid)
        self.forget(sids)

    def delete_for_runs(self, run_ids: Sequence[str]) -> Op[None]:
        doomed_runs = {str(r) for r in run_ids}
        if not doomed_runs:
            return
        for sid in (yield from _sessions(self.prefix)):
            checkpoints = yield from _scan(sid, CHECKPOINT_PREFIX)
            doomed = [e for e in checkpoints if _payload(e).get("run_id") in doomed_runs]
            if not doomed:
                continue
            kept = [e for e in checkpoints if _payload(e).get("run_id") not in doomed_runs]
            if not kept:
                yield Delete(sid)
                self.forget([sid])
                continue
            removed = [e.id for e in doomed]
            for entry in doomed:
                checkpoint_id = unquote(entry.id.removeprefix(CHECKPOINT_PREFIX))
                removed.extend(w.id for w in (yield from _scan(sid, _writes_prefix(checkpoint_id))))
            delta = SessionDelta(removed_entry_ids=removed, leaf_id=kept[-1].id)
            yield SaveDelta(sid, delta)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> Op[None]:
        sources = yield from _sessions(self.thread_prefix(str(source_thread_id)))
        targets = yield from _sessions(self.thread_prefix(str(target_thread_id)))
        if targets:
            raise ValueError(f"copy_thread: thread {target_thread_id!r} already has checkpoints")
        for sid in sources:
            _, ns = self.parse_session_id(sid)
            try:
                yield Fork(sid, self.session_id(str(target_thread_id), ns))
            except SessionExistsError:
                raise ValueError(
                    f"copy_thread: thread {target_thread_id!r} already has checkpoints"
                ) from None

    def prune(self, thread_ids: Sequence[str], strategy: str) -> Op[None]:
        if isinstance(thread_ids, str):
            raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"Unknown prune strategy: {strategy!r}")
        per_thread: list[list[str]] = []
        for thread_id in thread_ids:
            per_thread.append((yield from _sessions(self.thread_prefix(str(thread_id)))))
        if strategy == "delete":
            for sids in per_thread:
                for sid in sids:
                    yield Delete(sid)
                self.forget(sids)
            return
        snapshots: list[tuple[str, SessionData]] = []
        for sids in per_thread:
            for sid in sids:
                data = cast("SessionData | None", (yield Load(sid)))
                if data is None:
                    continue
                kept = self._keep_latest(sid, data)
                if kept is not None:
                    snapshots.append((sid, kept))
        for sid, snapshot in snapshots:
            yield SaveSnapshot(sid, snapshot)
        self.forget(sid for sid, _ in snapshots)

    def _keep_latest(self, sid: str, data: SessionData) -> SessionData | None:
        by_id = {e.id: e for e in data.entries}
        checkpoints = sorted(e.id for e in data.entries if e.id.startswith(CHECKPOINT_PREFIX))
        if not checkpoints:
            return None
        latest = by_id[checkpoints[-1]]
        payload = _payload(latest)
        metadata = self.decode(payload["metadata"])
        if metadata.get("counters_since_delta_snapshot"):
            raise NotImplementedError(
                f"prune keep_latest: thread {self.parse_session_id(sid)[0]!r} uses a "
                "DeltaChannel, whose latest value needs older checkpoints"
            )
        keep: set[str] = set()
        for form in payload["values"].values():
            if "blob" in form:
                keep.add(form["blob"])
            for tail, count in form.get("messages", ()):
                cursor: str | None = tail
                for _ in range(int(count)):
                    if cursor is None or cursor not in by_id:
                        break
                    keep.add(cursor)
                    cursor = by_id[cursor].parent_id
        checkpoint_id = unquote(latest.id.removeprefix(CHECKPOINT_PREFIX))
        writes = _writes_prefix(checkpoint_id)
        rewritten = Entry(
            id=latest.id,
            parent_id=None,
            kind=latest.kind,
            timestamp=latest.timestamp,
            payload={**payload, "parent": None},
        )
        entries = [
            rewritten if e.id == latest.id else e
            for e in data.entries
            if e.id in keep or e.id == latest.id or e.id.startswith(writes)
        ]
        return SessionData(entries=entries, leaf_id=latest.id, metadata=data.metadata)


def _chain_broken(sid: str, tail: str, found: int, count: int) -> LookupError:
    return LookupError(
        f"eventlog session {sid!r}: message chain at {tail!r} holds {found} of {count} messages"
    )


def _walk_back(sid: str, by_id: Mapping[str, Entry], tail: str, count: int) -> list[Entry]:
    """The last `count` entries of the chain ending at `tail`, root first (as `path` gives)."""
    part: list[Entry] = []
    cursor: str | None = tail
    while len(part) < count and cursor is not None:
        entry = by_id.get(cursor)
        if entry is None:
            break
        part.append(entry)
        cursor = entry.parent_id
    if len(part) != count:
        raise _chain_broken(sid, tail, len(part), count)
    part.reverse()
    return part


def _array_header(count: int) -> bytes:
    """The msgpack header of an array of `count` elements."""
    if count < 16:
        return bytes([0x90 | count])
    if count < 1 << 16:
        return b"\xdc" + count.to_bytes(2, "big")
    return b"\xdd" + count.to_bytes(4, "big")


def _digest(encoded: Mapping[str, str]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(encoded["t"].encode())
    digest.update(b"\x00")
    digest.update(encoded["b"].encode())
    return digest.hexdigest()
