"""The folder-import benchmark runs end to end on tiny folders, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.import_folder import build_folder, import_once, measure, verdicts


def test_every_format_is_imported_and_measured(tmp_path: Path) -> None:
    reported: list[str] = []
    pairs = measure(("claude-code", "pi"), 5.0, tmp_path, dsn=None, report=reported.append)
    assert [(small.format, small.backend) for small, _ in pairs] == [
        ("claude-code", "sqlite"),
        ("pi", "sqlite"),
    ]
    for small, full in pairs:
        assert 0 < small.entries < full.entries
        assert small.peak_rss_kb > 0 and full.seconds > 0
    assert len(reported) == 4
    assert len(verdicts(pairs)) == 2


def test_a_failed_import_is_not_measured(tmp_path: Path) -> None:
    folder = tmp_path / "claude"
    build_folder("claude-code", folder, 0.2)
    (folder / "broken.jsonl").write_bytes(b"not json\n")
    with pytest.raises(RuntimeError, match=r"broken\.jsonl"):
        import_once("claude-code", "sqlite", f"sqlite:///{tmp_path / 'x.db'}", folder)
