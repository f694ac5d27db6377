"""Hostile files: every reader gives a typed error (or, with skip_bad, a skip), never a raw one."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

import eventlog
from eventlog import Store
from eventlog.formats import MalformedLineError, import_file, read_session
from eventlog.formats._lines import synthetic_id
from eventlog.memory import MemoryStore

HOSTILE: dict[str, bytes] = {
    "depth 5000": b"[" * 5000 + b"]" * 5000,
    "1e400": b"1e400",
    "xff byte": b'"a\xffb"',
    "lone surrogate escape": b'"\\ud800"',
    "huge int": b"9" * 5000,
}


class Case(NamedTuple):
    format: str
    text: bytes
    kept: int | None
    """Entries left when skip_bad skips the hostile record; None: it cannot be skipped."""


def _pi(value: bytes, *, in_header: bool) -> Case:
    header = b'{"type":"session","version":3,"id":"h"' + (b',"x":' + value if in_header else b"")
    lines = [header + b"}", b'{"type":"m","id":"a","parentId":null}']
    if not in_header:
        lines.append(b'{"type":"m","id":"bad","parentId":"a","x":' + value + b"}")
    lines.append(b'{"type":"m","id":"c","parentId":"a"}')
    # A skipped header leaves the file without one: its lines are all entries then.
    return Case("pi", b"\n".join(lines) + b"\n", 2)


def _cases(value: bytes) -> dict[str, Case]:
    flue_head = b'{"version":3,"entries":['
    good = b'{"type":"m","id":"a","parentId":null}'
    return {
        "pi entry": _pi(value, in_header=False),
        "pi header": _pi(value, in_header=True),
        "claude-code line": Case(
            "claude-code",
            b'{"type":"user","uuid":"a"}\n{"type":"user","uuid":"bad","x":' + value + b"}\n",
            1,
        ),
        "claude-code first line": Case(
            "claude-code",
            b'{"type":"user","uuid":"bad","x":' + value + b'}\n{"type":"user","uuid":"a"}\n',
            1,
        ),
        "codex line": Case(
            "codex",
            b'{"type":"session_meta","payload":{"id":"c"}}\n'
            b'{"type":"event_msg","payload":{"x":' + value + b"}}\n",
            1,
        ),
        "codex first line": Case(
            "codex",
            b'{"type":"session_meta","payload":{"id":"c","x":' + value + b"}}\n"
            b'{"type":"event_msg","payload":{}}\n',
            1,
        ),
        "codex top-level field": Case(
            "codex",
            b'{"type":"session_meta","x":' + value + b'}\n{"type":"event_msg","payload":{}}\n',
            1,
        ),
        "jsonl header": Case(
            "jsonl",
            b'{"eventlog_dump":1,"session_id":"x","version":1,"first_version":1,'
            + (b'"x":' + value if value.startswith(b"[") else b'"session_id":' + value)
            + b'}\n{"v":1,"mode":"snapshot","leaf_id":null,"removed":[],"entries":0}\n',
            None,
        ),
        "flue element": Case(
            "flue", flue_head + good + b',{"type":"m","id":"bad","x":' + value + b"}]}", 1
        ),
        "flue element id": Case(
            "flue", flue_head + good + b',{"type":"m","id":' + value + b"}]}", 1
        ),
        "flue parentId": Case(
            "flue", flue_head + good + b',{"type":"m","id":"bad","parentId":' + value + b"}]}", 1
        ),
        "flue leafId": Case("flue", flue_head + good + b'],"leafId":' + value + b"}", None),
        "flue top-level field": Case("flue", flue_head + good + b'],"x":' + value + b"}", None),
        "flue metadata": Case(
            "flue", flue_head + good + b'],"metadata":{"x":' + value + b"}}", None
        ),
    }


def _all_cases() -> list[object]:
    params: list[object] = []
    for value_name, value in HOSTILE.items():
        for case_name, case in _cases(value).items():
            params.append(pytest.param(case, id=f"{case_name}-{value_name}"))
    return params


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    with eventlog.connect(f"sqlite:///{tmp_path / 'target.db'}") as store:
        yield store


@pytest.mark.parametrize("skip_bad", [False, True], ids=["strict", "skip_bad"])
@pytest.mark.parametrize("case", _all_cases())
def test_hostile_record_is_a_typed_error_or_a_skip_and_writes_nothing_bad(
    sqlite_store: Store, tmp_path: Path, case: Case, skip_bad: bool
) -> None:
    path = tmp_path / "hostile.file"
    path.write_bytes(case.text)
    skippable = skip_bad and case.kept is not None
    # A Flue document whose structure breaks (too deep, not UTF-8) is not skippable.
    may_fail = not skippable or case.format == "flue"
    if case.format == "jsonl" and skip_bad:
        with pytest.raises(eventlog.InvalidInputError):
            import_file(sqlite_store, case.format, path, skip_bad=True)
    else:
        try:
            result = import_file(sqlite_store, case.format, path, skip_bad=skip_bad)
        except MalformedLineError:
            assert may_fail
        else:
            assert skippable
            assert result.skipped_bad == 1
            data = sqlite_store.load(result.session_id)
            assert data is not None
            assert len(data.entries) == case.kept
            assert "bad" not in {entry.id for entry in data.entries}
            sqlite_store.delete(result.session_id)
    assert sqlite_store.list_sessions().items == []

    try:
        read = read_session(case.format, io.BytesIO(case.text), skip_bad=skip_bad)
    except MalformedLineError:
        assert may_fail
    else:
        assert skippable
        assert len(read.entries) == case.kept
        assert "bad" not in {entry.id for entry in read.entries}
        with MemoryStore() as check:  # what was read is what the store accepts
            check.save("s", read)


def test_forged_synthetic_id_gets_another_id_the_same_on_every_import(tmp_path: Path) -> None:
    forged = synthetic_id("sess", 2)  # the id line 2 (no uuid) would be given
    path = tmp_path / "sess.jsonl"
    path.write_bytes(
        b'{"type":"user","uuid":"%s"}\n{"type":"summary","summary":"x"}\n' % forged.encode()
    )
    with eventlog.connect(f"sqlite:///{tmp_path / 'target.db'}") as store:
        first = import_file(store, "claude-code", path)
        data = store.load("sess")
        assert data is not None
        ids = [entry.id for entry in data.entries]
        assert ids[0] == forged
        assert len(set(ids)) == 2
        again = import_file(store, "claude-code", path)
        assert (again.appended, again.already_stored, again.version) == (0, 2, first.version)
    read = read_session("claude-code", io.BytesIO(path.read_bytes()), session_id="sess")
    assert [entry.id for entry in read.entries] == ids


def test_a_later_uuid_equal_to_an_earlier_synthetic_id_is_a_repeat(tmp_path: Path) -> None:
    given = synthetic_id("sess", 1)  # line 1 has no uuid, line 2 claims its id
    text = b'{"type":"summary"}\n{"type":"user","uuid":"%s"}\n' % given.encode()
    read = read_session("claude-code", io.BytesIO(text), session_id="sess")
    ids = [entry.id for entry in read.entries]
    assert ids[0] == given
    assert len(set(ids)) == 2
    assert read.leaf_id is None  # the repeated uuid is not a real entry of the tree
