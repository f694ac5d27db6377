"""Hypothesis strategies for valid eventlog input (DESIGN.md section 1), and a strict JSON check.

Everything drawn here is *valid*: ids of 1..255 UTF-8 bytes without NUL or lone
surrogates, payloads and metadata of allowed JSON only (finite numbers, `-0.0`,
strings holding `\\x00`, modest nesting), snapshots whose leaf is one of their
entries. Property tests may then break one rule on purpose.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Any, TypeAlias

import msgspec
from hypothesis import strategies as st

from eventlog import UNSET, Entry, RawJSON, SessionData, SessionDelta, UnsetType

__all__ = [
    "EDGE_IDS",
    "ID_POOL",
    "compact_bytes",
    "entries_for",
    "entry_ids",
    "json_identical",
    "json_objects",
    "json_values",
    "kinds",
    "metadata_values",
    "payloads",
    "raw_json_objects",
    "session_deltas",
    "session_snapshots",
    "timestamps",
]

JSON: TypeAlias = Any

# Ids at the edges of the rules: one byte, exactly 255 bytes in 1-, 2-, 3- and 4-byte
# characters, and characters that sort oddly (combining marks, astral planes).
EDGE_IDS: tuple[str, ...] = (
    "a",
    "a" * 255,
    "é" * 127 + "a",
    "€" * 85,
    "😀" * 63 + "abc",
    "e\u0301",
    "\U0010ffff",
    " ",
    "%_\\",
)

# A small pool so that generated deltas and snapshots reuse ids often.
ID_POOL: tuple[str, ...] = ("a", "b", "c", "d", "é", "日本", "😀", "x" * 255, "€" * 85)

_ID_CHARACTERS = st.characters(codec="utf-8", exclude_characters="\x00")


def _fits(text: str) -> bool:
    return 1 <= len(text.encode("utf-8")) <= 255


def entry_ids() -> st.SearchStrategy[str]:
    """Valid ids: 1..255 UTF-8 bytes, no NUL, no lone surrogates, multibyte included."""
    return st.one_of(
        st.text(_ID_CHARACTERS, min_size=1, max_size=63),
        st.text(st.characters(min_codepoint=0x80, codec="utf-8"), min_size=1, max_size=63),
        st.sampled_from(EDGE_IDS),
    ).filter(_fits)


# Strings inside payloads may hold NUL; `codec="utf-8"` already leaves out surrogates.
_json_strings = st.text(st.one_of(st.characters(codec="utf-8"), st.just("\x00")), max_size=20)

_json_scalars: st.SearchStrategy[JSON] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just(-0.0),
    _json_strings,
)


def json_values(*, max_leaves: int = 12) -> st.SearchStrategy[JSON]:
    """Allowed JSON values: scalars, lists and str-keyed dicts of modest size and depth."""
    return st.recursive(
        _json_scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(_json_strings, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def json_objects(*, max_leaves: int = 12) -> st.SearchStrategy[dict[str, JSON]]:
    """Allowed JSON objects as dicts (key order is part of the content)."""
    return st.dictionaries(_json_strings, json_values(max_leaves=max_leaves), max_size=5)


_WHITESPACE = st.sampled_from(["", "", " ", "\n", "\t", "  \r\n"])


@st.composite
def _rendered(draw: st.DrawFn, value: JSON) -> bytes:
    """`value` as JSON text with drawn whitespace (and sometimes a duplicated key)."""
    gap = draw(_WHITESPACE).encode()
    if isinstance(value, dict):
        members = [
            msgspec.json.encode(key) + gap + b":" + draw(_WHITESPACE).encode() + draw(_rendered(v))
            for key, v in value.items()
        ]
        duplicate = draw(st.booleans())
        if members and duplicate:
            # A duplicate key: allowed in RawJSON, which keeps the exact bytes.
            members.insert(0, members[-1])
        return b"{" + gap + (b"," + gap).join(members) + gap + b"}"
    if isinstance(value, list):
        items = [draw(_rendered(item)) for item in value]
        return b"[" + gap + (b"," + gap).join(items) + gap + b"]"
    return msgspec.json.encode(value)


@st.composite
def raw_json_objects(draw: st.DrawFn) -> RawJSON:
    """`RawJSON` of an allowed object, with whitespace and duplicate keys kept as given."""
    value = draw(json_objects(max_leaves=8))
    lead = draw(_WHITESPACE).encode()
    return RawJSON(lead + draw(_rendered(value)) + draw(_WHITESPACE).encode())


def payloads() -> st.SearchStrategy[dict[str, JSON] | RawJSON]:
    """Entry payloads: mostly dicts, sometimes `RawJSON`."""
    return st.one_of(json_objects(), json_objects(), raw_json_objects())


def metadata_values() -> st.SearchStrategy[dict[str, JSON] | RawJSON]:
    """Session metadata: the same rules as payloads, usually small."""
    return st.one_of(json_objects(max_leaves=4), raw_json_objects())


def kinds() -> st.SearchStrategy[str]:
    """Entry kinds: the usual ones and arbitrary text (opaque to the engine)."""
    return st.one_of(
        st.sampled_from(["message", "compaction", "branch_summary", "custom"]),
        st.text(_ID_CHARACTERS, min_size=1, max_size=12),
    )


def timestamps() -> st.SearchStrategy[str | None]:
    """Timestamps as a caller gives them: None, ISO-8601, or any text (never rewritten)."""
    return st.one_of(
        st.none(),
        st.datetimes().map(lambda moment: moment.isoformat()),
        st.text(_ID_CHARACTERS, max_size=12),
    )


@st.composite
def entries_for(
    draw: st.DrawFn,
    entry_id: str,
    parents: Sequence[str | None],
) -> Entry:
    """An entry with the given id and a parent drawn from `parents` (never itself)."""
    choices = [parent for parent in parents if parent != entry_id] or [None]
    return Entry(
        id=entry_id,
        parent_id=draw(st.sampled_from(choices)),
        kind=draw(kinds()),
        timestamp=draw(timestamps()),
        payload=draw(payloads()),
    )


@st.composite
def session_snapshots(
    draw: st.DrawFn,
    *,
    ids: st.SearchStrategy[str] | None = None,
    max_entries: int = 8,
) -> SessionData:
    """A valid snapshot: unique ids, each parent None, an earlier entry or an unknown id.

    The leaf is one of the entries, or None.
    """
    id_strategy = entry_ids() if ids is None else ids
    chosen = draw(st.lists(id_strategy, unique=True, max_size=max_entries))
    unknown = draw(id_strategy.filter(lambda candidate: candidate not in chosen))
    entries: list[Entry] = []
    for index, entry_id in enumerate(chosen):
        parents: list[str | None] = [None, unknown, *chosen[:index]]
        entries.append(draw(entries_for(entry_id, parents)))
    leaf = draw(st.sampled_from([None, *chosen]))
    return SessionData(entries=entries, leaf_id=leaf, metadata=draw(metadata_values()))


@st.composite
def session_deltas(
    draw: st.DrawFn, *, ids: st.SearchStrategy[str] | None = None, max_deltas: int = 5
) -> list[SessionDelta]:
    """A sequence of deltas over a shared pool of ids.

    Later deltas reuse earlier entries (identical copies: retries), add fresh ids,
    remove known and unknown ids, and move the leaf to one of their new entries,
    to None, or leave it (`UNSET`). Each delta is valid on its own; applied in
    order, some may still conflict with what is stored (that is for tests to check).
    """
    id_strategy = entry_ids() if ids is None else ids
    pool = draw(st.lists(id_strategy, unique=True, min_size=1, max_size=10))
    made: dict[str, Entry] = {}
    deltas: list[SessionDelta] = []
    for _ in range(draw(st.integers(1, max_deltas))):
        fresh = draw(st.lists(st.sampled_from(pool), unique=True, max_size=4))
        new_entries: list[Entry] = []
        for entry_id in fresh:
            if entry_id in made and draw(st.booleans()):
                new_entries.append(made[entry_id])
            else:
                entry = draw(entries_for(entry_id, [None, *pool]))
                made.setdefault(entry_id, entry)
                new_entries.append(entry)
        repeat = draw(st.booleans())
        if new_entries and repeat:
            new_entries.append(new_entries[0])  # an identical copy collapses into one
        new_ids = {entry.id for entry in new_entries}
        removable = [entry_id for entry_id in pool if entry_id not in new_ids]
        removed = draw(st.lists(st.sampled_from(removable), max_size=3)) if removable else []
        leaf: str | UnsetType | None = draw(st.sampled_from([UNSET, None, *sorted(new_ids)]))
        metadata = draw(st.one_of(st.just(UNSET), metadata_values()))
        deltas.append(SessionDelta(new_entries, removed, leaf_id=leaf, metadata=metadata))
    return deltas


def compact_bytes(payload: dict[str, JSON] | RawJSON) -> bytes:
    """The bytes the store keeps for a payload: `RawJSON` as given, a dict compactly encoded."""
    if isinstance(payload, RawJSON):
        return bytes(payload)
    return msgspec.json.encode(payload)


def _float_bits(value: float) -> bytes:
    return struct.pack("<d", value)


def json_identical(left: JSON, right: JSON) -> bool:
    """Equal as JSON *and* in everything `==` forgives: types, key order, the sign of zero."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return math.isfinite(left) and _float_bits(left) == _float_bits(right)
    if isinstance(left, dict):
        return list(left) == list(right) and all(
            json_identical(left[key], right[key]) for key in left
        )
    if isinstance(left, list):
        return len(left) == len(right) and all(
            json_identical(a, b) for a, b in zip(left, right, strict=True)
        )
    return bool(left == right)
