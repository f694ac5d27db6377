"""The benchmark workload: agent turns and tool turns of realistic sizes."""

from __future__ import annotations

from collections.abc import Iterator

from eventlog import Entry

__all__ = ["AGENT_TURN_BYTES", "TurnSource", "history"]

_WORDS = [
    "the",
    "session",
    "store",
    "appends",
    "only",
    "what",
    "changed",
    "since",
    "the",
    "last",
    "turn",
    "so",
    "a",
    "long",
    "conversation",
    "costs",
    "no",
    "more",
    "to",
    "save",
    "than",
    "a",
    "short",
    "one",
    "while",
    "the",
    "blob",
    "rewrite",
    "grows",
]


def _text(size: int, seed: int) -> str:
    words: list[str] = []
    length = 0
    index = seed
    while length < size:
        word = _WORDS[index % len(_WORDS)]
        words.append(word)
        length += len(word) + 1
        index += 7
    return " ".join(words)[:size]


def _message(role: str, size: int, seed: int) -> dict[str, object]:
    return {
        "role": role,
        "content": [{"type": "text", "text": _text(size, seed)}],
        "model": "bench-model",
        "usage": {"input": seed % 997, "output": seed % 113},
    }


AGENT_TURN_BYTES = (300, 1500)
TOOL_RESULT_BYTES = 8000


class TurnSource:
    """Deterministic turns for one session: ids, parents and payloads."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.count = 0
        self.leaf: str | None = None

    def _entry(self, kind: str, payload: dict[str, object]) -> Entry:
        entry_id = f"{self.prefix}e{self.count:07d}"
        entry = Entry(
            entry_id, self.leaf, kind, f"2026-01-01T00:00:{self.count % 60:02d}Z", payload
        )
        self.count += 1
        self.leaf = entry_id
        return entry

    def agent_turn(self) -> list[Entry]:
        """A ~300 B user message and a ~1.5 KB assistant message."""
        user_bytes, assistant_bytes = AGENT_TURN_BYTES
        return [
            self._entry("message", _message("user", user_bytes, self.count)),
            self._entry("message", _message("assistant", assistant_bytes, self.count)),
        ]

    def tool_turn(self) -> list[Entry]:
        """One ~8 KB tool result."""
        return [self._entry("message", _message("tool", TOOL_RESULT_BYTES, self.count))]

    def turns(self) -> Iterator[list[Entry]]:
        """Agent turns with a tool turn after every fourth, forever."""
        index = 0
        while True:
            index += 1
            yield self.tool_turn() if index % 5 == 0 else self.agent_turn()


def history(source: TurnSource, entries: int) -> list[Entry]:
    """At least `entries` entries of mixed turns from `source`."""
    made: list[Entry] = []
    for turn in source.turns():
        if len(made) >= entries:
            return made
        made.extend(turn)
    raise AssertionError("unreachable")
