"""Rendering stored text for a terminal: escaped control characters and the branch tree."""

from __future__ import annotations

import pytest

from eventlog import Entry, SessionData
from eventlog.cli.tree import printable, render_tree


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, é 日本", "plain text, é 日本"),
        ("\x1b]0;pwned\x07\x1b[2J", "\\x1b]0;pwned\\x07\\x1b[2J"),
        ("a\nb\tc\rd\x00", "a\\nb\\tc\\rd\\x00"),
        ("del\x7f c1\x9b[2J nel\x85", "del\\x7f c1\\x9b[2J nel\\x85"),
        ("\u202eevil\u202c \u2066x\u2069", "\\u202eevil\\u202c \\u2066x\\u2069"),
        ("line\u2028sep", "line\\u2028sep"),
        ("lone \udcff surrogate", "lone \\udcff surrogate"),
    ],
)
def test_printable_escapes_every_control_bidi_and_surrogate_character(
    text: str, shown: str
) -> None:
    assert printable(text) == shown


def test_tree_shows_entries_in_a_parent_cycle_under_a_heading() -> None:
    data = SessionData(
        [
            Entry("root"),
            Entry("a", "b"),
            Entry("b", "a"),
            Entry("c", "root"),
            Entry("d", "a"),  # hangs off the cycle
            Entry("x", "y"),
            Entry("y", "z"),
            Entry("z", "x"),  # a second cycle
        ],
        leaf_id="c",
    )
    lines = list(render_tree(data))
    heading = next(i for i, line in enumerate(lines) if "no root reaches them" in line)
    above, below = lines[:heading], lines[heading + 1 :]

    def ids(rows: list[str]) -> list[str]:
        return [row.split("● " if "● " in row else "○ ", 1)[1].split()[0] for row in rows]

    assert ids(above) == ["root", "c"]
    assert sorted(ids(below)) == ["a", "b", "d", "x", "y", "z"]
    assert sorted(ids([row for row in below if "(in a parent cycle)" in row])) == list("abxyz")


def test_tree_of_a_leaf_inside_a_cycle_marks_the_leaf() -> None:
    data = SessionData([Entry("a", "b"), Entry("b", "a")], leaf_id="a")
    lines = list(render_tree(data))
    assert len(lines) == 3 and "no root reaches them" in lines[0]
    assert sum("◀ leaf" in line for line in lines) == 1


def test_tree_of_a_long_cycle_shows_every_entry_once() -> None:
    count = 20_000
    entries = [Entry(f"e{n}", f"e{(n - 1) % count}") for n in range(count)]
    lines = list(render_tree(SessionData(entries, leaf_id="e0")))
    assert len(lines) == count + 1 and sum("(in a parent cycle)" in line for line in lines) == count
