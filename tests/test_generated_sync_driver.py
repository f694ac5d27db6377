"""Every generated sync module is exactly what the generator makes from its async source."""

from __future__ import annotations

import re

import pytest

from eventlog import _async_to_sync

TARGETS = [target for _, target in _async_to_sync.PAIRS]


@pytest.mark.parametrize(("source", "target"), _async_to_sync.PAIRS, ids=TARGETS)
def test_generated_module_matches_its_async_source(source: str, target: str) -> None:
    expected = _async_to_sync.generate(
        (_async_to_sync.HERE / source).read_text("utf-8"), name=source
    )
    assert (_async_to_sync.HERE / target).read_text("utf-8") == expected, (
        "run: python -m eventlog._async_to_sync"
    )


@pytest.mark.parametrize("target", TARGETS)
def test_generated_module_keeps_no_async_word(target: str) -> None:
    generated = (_async_to_sync.HERE / target).read_text("utf-8")
    assert _async_to_sync.async_words(generated) == []
    for token in ("async ", "await ", "AsyncConnection", "asynccontextmanager", "for asyncio"):
        assert token not in generated


@pytest.mark.parametrize(
    "leftover",
    [
        "async def f(): ...",
        "x = await y",
        "class _AsyncOptimisticTransaction: ...",
        '"""A store in PostgreSQL, for asyncio."""',
        "This file is the source of `x.py`.",
        "def __aenter__(self): ...",
    ],
)
def test_the_check_finds_each_async_word(leftover: str) -> None:
    assert _async_to_sync.async_words(leftover) != []


def test_every_generated_module_of_the_package_is_checked() -> None:
    generated = {
        path.relative_to(_async_to_sync.HERE).as_posix()
        for path in _async_to_sync.HERE.rglob("*.py")
        if re.search(r"^GENERATED from `", path.read_text("utf-8"), re.MULTILINE)
    }
    assert generated == set(TARGETS)


def test_the_command_line_check_passes(capsys: pytest.CaptureFixture[str]) -> None:
    assert _async_to_sync.main(["--check"]) == 0
    assert capsys.readouterr().out == ""
