"""`--tenant` (or EVENTLOG_TENANT) on every command that opens a store.

Two tenants of one SQLite file hold a session of the same id; each command run
for one of them sees and changes only that tenant's session.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.cli import cli


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A file where tenants a and b (and the default tenant) each hold session "s"."""
    url = f"sqlite:///{tmp_path / 'tenants.db'}"
    for tenant in ("a", "b", None):
        with eventlog.connect(url, tenant=tenant) as store:
            said = f"said-by-{tenant or 'default'}"
            store.save_delta(
                "s",
                SessionDelta(
                    [Entry("e1", payload={"text": said}), Entry("e2", "e1", payload={"n": 2})],
                    leaf_id="e2",
                ),
            )
            store.save_delta("s", SessionDelta(removed_entry_ids=["e2"], leaf_id="e1"))
    return url


def _loaded(url: str, tenant: str | None, session_id: str = "s") -> eventlog.SessionData | None:
    with eventlog.connect(url, tenant=tenant) as store:
        return store.load(session_id)


def test_ls_show_and_stats_see_only_their_tenant(url: str) -> None:
    shown = _run("show", "s", "--url", url, "--tenant", "a")
    assert shown.exit_code == 0, shown.output
    assert "said-by-a" in shown.output and "said-by-b" not in shown.output
    assert "said-by-default" not in shown.output
    assert "said-by-default" in _run("show", "s", "--url", url).output
    listed = _run("ls", "--url", url, "--tenant", "nobody")
    assert listed.exit_code == 0 and listed.output == ""
    stats = _run("stats", "--url", url, "--tenant", "b")
    assert stats.exit_code == 0, stats.output
    assert "sessions    1" in stats.output


def test_the_tenant_may_come_from_the_environment(url: str) -> None:
    shown = _run("show", "s", "--url", url, env={"EVENTLOG_TENANT": "b"})
    assert shown.exit_code == 0, shown.output
    assert "said-by-b" in shown.output and "said-by-a" not in shown.output


def test_fork_purge_and_demo_write_only_their_tenant(url: str) -> None:
    before_b = _loaded(url, "b")
    assert _run("fork", "s", "copy", "--url", url, "--tenant", "a").exit_code == 0
    assert _run("purge", "s", "--url", url, "--tenant", "a").exit_code == 0
    assert _run("demo", "--url", url, "--tenant", "a").exit_code == 0
    assert _loaded(url, "a", "copy") is not None and _loaded(url, "a", "demo") is not None
    assert _loaded(url, "b", "copy") is None and _loaded(url, None, "demo") is None
    assert _loaded(url, "b") == before_b
    with eventlog.connect(url, tenant="b") as store:
        assert list(store.changes("s").items[-1].removed_ids) == ["e2"]


def test_export_and_import_move_a_session_between_tenants(url: str, tmp_path: Path) -> None:
    out = tmp_path / "s.jsonl"
    exported = _run(
        "export", "s", "--format", "jsonl", "-o", str(out), "--url", url, "--tenant", "a"
    )
    assert exported.exit_code == 0, exported.output
    imported = _run(
        "import", str(out), "--format", "jsonl", "--session", "moved", "--url", url, "--tenant", "c"
    )
    assert imported.exit_code == 0, imported.output
    moved = _loaded(url, "c", "moved")
    assert moved is not None and moved.entries == _loaded(url, "a").entries  # type: ignore[union-attr]
    assert _loaded(url, "a", "moved") is None and _loaded(url, None, "moved") is None


def test_migrate_takes_a_tenant_too(url: str) -> None:
    assert _run("migrate", "--url", url, "--tenant", "a").exit_code == 0


@pytest.mark.parametrize("tenant", ["", "x" * 256, "nul\x00inside"])
def test_a_bad_tenant_is_one_line_and_opens_nothing(url: str, tenant: str) -> None:
    result = _run("ls", "--url", url, "--tenant", tenant)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "tenant" in result.output
