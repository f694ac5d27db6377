"""`export -o` onto what is not a plain file: symlinks, FIFOs, devices, open descriptors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import eventlog
from eventlog import Entry, SessionDelta
from eventlog.cli import cli
from eventlog.formats import export_file
from eventlog.formats._export import atomic_output


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with eventlog.connect(url) as store:
        store.save_delta(
            "s", SessionDelta([Entry("a", None, "message", None, {"text": "hi"})], leaf_id="a")
        )
    return url


def _expected(url: str, tmp_path: Path) -> bytes:
    with eventlog.connect(url) as store:
        export_file(store, "pi", "s", tmp_path / "expected.jsonl")
    return (tmp_path / "expected.jsonl").read_bytes()


def _export(url: str, target: Path | str) -> Result:
    return CliRunner().invoke(
        cli, ["export", "--format", "pi", "s", "-o", str(target), "--url", url]
    )


def _names(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir()}


def test_export_through_a_symlink_replaces_the_file_it_points_to(url: str, tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "data.jsonl"
    real.write_bytes(b"old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    result = _export(url, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == _expected(url, tmp_path)
    assert _names(real_dir) == {"data.jsonl"}  # the temporary file was beside the real file


def test_export_through_a_chain_of_relative_symlinks(url: str, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "hop").symlink_to("../final.jsonl")
    (tmp_path / "first").symlink_to("sub/hop")
    result = _export(url, tmp_path / "first")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "first").is_symlink() and (tmp_path / "sub" / "hop").is_symlink()
    assert (tmp_path / "final.jsonl").read_bytes() == _expected(url, tmp_path)


def test_export_through_a_dangling_symlink_creates_its_target(url: str, tmp_path: Path) -> None:
    link = tmp_path / "link.jsonl"
    link.symlink_to("made.jsonl")
    result = _export(url, link)
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert (tmp_path / "made.jsonl").read_bytes() == _expected(url, tmp_path)


def test_export_into_a_fifo_writes_into_it_and_keeps_it(url: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = _export(url, fifo)
    reader.join(timeout=10)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert received == [_expected(url, tmp_path)]


def test_a_failed_export_never_opens_a_fifo(url: str, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    # No reader: opening the FIFO would block, so a return proves it was never opened.
    result = CliRunner().invoke(
        cli, ["export", "--format", "jsonl", "missing", "-o", str(fifo), "--url", url]
    )
    assert result.exit_code == 1 and "SessionNotFoundError" in result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _names(tmp_path) == {"x.db", "fifo.jsonl"}


def test_a_failure_while_writing_sends_nothing_to_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(RuntimeError), atomic_output(fifo) as stream:
        stream.write(b"half")
        raise RuntimeError("export failed")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and _names(tmp_path) == {"fifo"}


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod of a device needs root")
def test_export_onto_a_device_node_writes_into_it_and_keeps_it(url: str, tmp_path: Path) -> None:
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # a null device, in tmp_path only
    result = _export(url, null)
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.lstat(null).st_mode)
    assert _names(tmp_path) == {"x.db", "null"}


@pytest.mark.parametrize("how", ["fd path", "symlink to the fd path"])
def test_export_to_an_open_descriptor_appends_to_what_it_refers_to(
    url: str, tmp_path: Path, how: str
) -> None:
    # The child's own stdout, as with `-o /dev/stdout >> log`: the log keeps its lines.
    target = "/proc/self/fd/1"
    if how != "fd path":
        (tmp_path / "out").symlink_to(target)
        target = str(tmp_path / "out")
    log = tmp_path / "log.txt"
    log.write_bytes(b"earlier line\n")
    with log.open("ab") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "eventlog", "export", "--format", "pi", "s", "-o", target],
            env={**os.environ, "EVENTLOG_URL": url},
            stdout=stdout,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert log.read_bytes() == b"earlier line\n" + _expected(url, tmp_path)
    assert how == "fd path" or (tmp_path / "out").is_symlink()


def test_a_replaced_file_keeps_its_mode_and_a_new_one_follows_the_umask(
    url: str, tmp_path: Path
) -> None:
    kept = tmp_path / "kept.jsonl"
    kept.write_bytes(b"old\n")
    kept.chmod(0o640)
    assert _export(url, kept).exit_code == 0
    assert stat.S_IMODE(os.stat(kept).st_mode) == 0o640
    umask = os.umask(0o022)
    os.umask(umask)
    new = tmp_path / "new.jsonl"
    assert _export(url, new).exit_code == 0
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o666 & ~umask
