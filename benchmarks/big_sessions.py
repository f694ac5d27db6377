"""Large session files and folders, built deterministically from real fixtures' records.

No tool publishes a multi-megabyte session of its own except pi (pi-mono's
``before-compaction.jsonl``, 2.4 MB, kept in ``tests/formats/fixtures/pi-mono``).
For the other formats a large session is the records of small fixtures
(``tests/formats/fixtures/README.md`` says where each comes from) repeated
with every id renamed per repetition, so each record keeps its exact shape
and the file stays a valid session: no id repeats unless the fixture repeats
it, and each reference points at the copy of the record it pointed at.

The same inputs always give the same bytes, so tests can rebuild a file
rather than store it, and a benchmark can build a folder of any size.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

FIXTURES: Final = Path(__file__).resolve().parent.parent / "tests" / "formats" / "fixtures"

CLAUDE_TEMPLATES: Final = (
    FIXTURES / "claude-code-log" / "representative_messages.jsonl",
    FIXTURES / "claude-code-log" / "todowrite_examples.jsonl",
    FIXTURES / "claude_project" / "7d2c1a30-0000-4000-8000-000000000001.jsonl",
)
"""The main-session records: claude-code-log's own test data, then the project fixture
(progress lines, a compaction boundary, uuid-less lines, a /rewind fork)."""
CLAUDE_AGENT_TEMPLATE: Final = (
    FIXTURES / "claude_project" / "7d2c1a30-0000-4000-8000-000000000001" / "subagents"
)
PI_TEMPLATE: Final = FIXTURES / "pi-mono" / "before-compaction.jsonl"
FLUE_STREAM_TEMPLATE: Final = FIXTURES / "flue_stream.jsonl"
OPENCODE_TEMPLATE: Final = FIXTURES / "opencode_storage"

_CLAUDE_IDS: Final = frozenset(("uuid", "parentUuid", "logicalParentUuid", "leafUuid", "messageId"))
_FLUE_IDS: Final = frozenset(
    (
        "id",
        "messageId",
        "entryId",
        "parentId",
        "assistantMessageId",
        "firstKeptEntryId",
        "sourceLeafId",
        "leafId",
        "previousLeafId",
        "submissionId",
        "turnId",
        "toolCallId",
    )
)
_NAMESPACE: Final = uuid.UUID("5b3f0c1e-8d7a-4c2b-9e6f-0a1b2c3d4e5f")


def _lines(path: Path) -> list[Any]:
    """The JSON lines of a fixture that decode (a real fixture may hold bad ones)."""
    records = []
    for line in path.read_bytes().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _dump(record: object) -> bytes:
    # The tools write JSON.stringify's compact form.
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _renamed(value: Any, keys: frozenset[str], rename: dict[str, str]) -> Any:
    """`value` with every string under one of `keys` that `rename` knows renamed, deeply."""
    if isinstance(value, dict):
        return {
            key: rename.get(item, item)
            if key in keys and isinstance(item, str)
            else _renamed(item, keys, rename)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_renamed(item, keys, rename) for item in value]
    return value


def _ids(value: Any, keys: frozenset[str]) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys and isinstance(item, str):
                yield item
            else:
                yield from _ids(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from _ids(item, keys)


def _claude_copy(
    records: list[Any], session_id: str, seed: str, extra: dict[str, Any] | None = None
) -> Iterator[bytes]:
    ids = {found for record in records for found in _ids(record, _CLAUDE_IDS)}
    rename = {old: str(uuid.uuid5(_NAMESPACE, f"{seed}:{old}")) for old in ids}
    for record in records:
        line = _renamed(record, _CLAUDE_IDS, rename)
        if "sessionId" in line:
            line["sessionId"] = session_id
        if extra:
            line.update(extra)
        yield _dump(line)


def write_claude_session(path: Path, session_id: str, *, min_bytes: int) -> int:
    """A Claude Code session file of at least `min_bytes`; returns its line count."""
    templates = [_lines(template) for template in CLAUDE_TEMPLATES]
    written = lines = copy = 0
    with path.open("wb") as out:
        while written < min_bytes:
            for index, records in enumerate(templates):
                for line in _claude_copy(records, session_id, f"{session_id}:{copy}:{index}"):
                    written += out.write(line)
                    lines += 1
            copy += 1
    return lines


def write_claude_agent(path: Path, session_id: str, agent_id: str, *, min_bytes: int) -> int:
    """A sub-agent file (every line ``isSidechain: true``) of at least `min_bytes`."""
    records = _lines(next(CLAUDE_AGENT_TEMPLATE.glob("agent-*.jsonl")))
    written = lines = copy = 0
    with path.open("wb") as out:
        while written < min_bytes:
            seed = f"{session_id}:{agent_id}:{copy}"
            for line in _claude_copy(records, session_id, seed, {"agentId": agent_id}):
                written += out.write(line)
                lines += 1
            copy += 1
    return lines


def write_flue_stream(path: Path, *, min_bytes: int) -> int:
    """A Flue 2.x stream of at least `min_bytes`: one conversation, its turns repeated."""
    records = _lines(FLUE_STREAM_TEMPLATE)
    ids = {found for record in records for found in _ids(record, _FLUE_IDS)}
    written = lines = copy = 0
    with path.open("wb") as out:
        while written < min_bytes:
            rename = {old: f"{old}-{copy}" for old in ids}
            for record in records:
                if copy and record["type"] == "conversation_created":
                    continue
                written += out.write(_dump(_renamed(record, _FLUE_IDS, rename)))
                lines += 1
            copy += 1
    return lines


def write_opencode_storage(root: Path, *, min_bytes: int) -> int:
    """A 1.x ``storage/`` folder whose first session holds at least `min_bytes` of messages
    and parts (the fixture's messages repeated under new time-ordered ids); returns the
    number of message and part files of that session."""
    info_path = sorted((OPENCODE_TEMPLATE / "session").glob("*/*.json"))[0]
    info = json.loads(info_path.read_bytes())
    sid = info["id"]
    (root / "session" / info_path.parent.name).mkdir(parents=True)
    (root / "session" / info_path.parent.name / info_path.name).write_bytes(_dump(info))
    messages = sorted((OPENCODE_TEMPLATE / "message" / sid).glob("*.json"))
    (root / "message" / sid).mkdir(parents=True)
    written = files = copy = 0
    while written < min_bytes:
        rename: dict[str, str] = {}
        for message_path in messages:
            # Ids keep OpenCode's prefix and sort by copy, then by the fixture's order.
            rename[message_path.stem] = f"msg_{copy:08d}{message_path.stem[4:]}"
        for message_path in messages:
            message = json.loads(message_path.read_bytes())
            message["id"] = rename[message["id"]]
            if isinstance(message.get("parentID"), str):
                message["parentID"] = rename.get(message["parentID"], message["parentID"])
            written += (root / "message" / sid / f"{message['id']}.json").write_bytes(
                _dump(message)
            )
            files += 1
            part_dir = root / "part" / message["id"]
            part_dir.mkdir(parents=True)
            template_parts = OPENCODE_TEMPLATE / "part" / message_path.stem
            for part_path in sorted(template_parts.glob("*.json")):
                part = json.loads(part_path.read_bytes())
                part["id"] = f"prt_{copy:08d}{part['id'][4:]}"
                part["messageID"] = message["id"]
                written += (part_dir / f"{part['id']}.json").write_bytes(_dump(part))
                files += 1
        copy += 1
    return files


def write_claude_project(folder: Path, *, total_bytes: int, session_bytes: int) -> int:
    """A ``~/.claude/projects/<cwd>/`` folder of about `total_bytes`: sessions of
    `session_bytes`, each with one sub-agent file of a tenth of that; returns the file count."""
    folder.mkdir(parents=True, exist_ok=True)
    written = files = 0
    while written < total_bytes:
        sid = str(uuid.uuid5(_NAMESPACE, f"session:{files}"))
        main = folder / f"{sid}.jsonl"
        write_claude_session(main, sid, min_bytes=session_bytes)
        agents = folder / sid / "subagents"
        agents.mkdir(parents=True)
        agent = agents / "agent-a1b2c3.jsonl"
        write_claude_agent(agent, sid, "a1b2c3", min_bytes=session_bytes // 10)
        written += main.stat().st_size + agent.stat().st_size
        files += 2
    return files


def write_pi_folder(folder: Path, *, total_bytes: int) -> int:
    """A pi sessions folder (``--<cwd>--/<time>_<id>.jsonl``) of about `total_bytes`:
    copies of pi-mono's own 2.4 MB v1 fixture, each under its own session id."""
    lines = PI_TEMPLATE.read_bytes().split(b"\n", 1)
    header, body = json.loads(lines[0]), lines[1]
    project = folder / "--work-project--"
    project.mkdir(parents=True, exist_ok=True)
    written = files = 0
    while written < total_bytes:
        sid = str(uuid.uuid5(_NAMESPACE, f"pi:{files}"))
        copy = {**header, "id": sid}
        stamp = header["timestamp"].replace(":", "-").replace(".", "-")
        path = project / f"{stamp}_{sid}.jsonl"
        path.write_bytes(_dump(copy) + body)
        written += path.stat().st_size
        files += 1
    return files
