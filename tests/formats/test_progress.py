"""The progress callback of import_file and export_file counts entries written and read."""

from __future__ import annotations

from pathlib import Path

import pytest

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.formats import export_file, import_file

from .helpers import FIXTURES


@pytest.mark.parametrize("batch_size", [500, 5])
def test_import_reports_every_entry_it_writes(tmp_path: Path, batch_size: int) -> None:
    counts: list[int] = []
    with eventlog.connect("memory://") as store:
        result = import_file(
            store, "pi", FIXTURES / "pi_v3.jsonl", batch_size=batch_size, progress=counts.append
        )
        again = import_file(store, "pi", FIXTURES / "pi_v3.jsonl", progress=counts.append)
    assert sum(counts) == result.entries + again.entries == 24
    assert len([count for count in counts if count]) == (3 if batch_size == 5 else 1) + 1


def test_a_dump_reports_each_version_read_and_each_write_restored(tmp_path: Path) -> None:
    counts: list[int] = []
    out = tmp_path / "s.jsonl"
    with eventlog.connect("memory://") as store:
        store.save_delta("s", SessionDelta([Entry("a", None, "m", None, {})], leaf_id="a"))
        store.save_delta("s", SessionDelta([Entry("b", "a", "m", None, {})], leaf_id="b"))
        export_file(store, "jsonl", "s", out, progress=counts.append)
        assert counts == [2, 1]  # the latest version first, then version 1
        counts.clear()
        import_file(store, "jsonl", out, session_id="copy", progress=counts.append)
    assert counts == [1, 1]


@pytest.mark.parametrize("format_name", ["pi", "flue", "claude-code"])
def test_export_reports_the_entries_it_read(tmp_path: Path, format_name: str) -> None:
    counts: list[int] = []
    with eventlog.connect("memory://") as store:
        import_file(store, "pi", FIXTURES / "pi_v3.jsonl", session_id="s")
        export_file(store, format_name, "s", tmp_path / "out", progress=counts.append)
    assert counts == [12]
