"""The encryption benchmark runs end to end at a tiny size, so it cannot rot."""

from __future__ import annotations

import pgserver
import pytest
from click.testing import CliRunner

from benchmarks.encryption import main


def test_encryption_benchmark_reports_both_ratios_on_sqlite() -> None:
    args = ["--entries", "20", "--turns", "2", "--loads", "1", "--rounds", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "save_delta sealed / plain:" in result.output
    assert "load sealed / plain:" in result.output
    assert "PostgreSQL" not in result.output


@pytest.mark.postgres
def test_encryption_benchmark_reports_postgres_too() -> None:
    dsn = pgserver.dsn_or_skip()
    args = ["--postgres", dsn, "--entries", "20", "--turns", "2", "--loads", "1", "--rounds", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.count("sealed / plain:") == 4
