"""The README's example and first commands stay true."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text("utf-8"), flags=re.S)


def test_readme_examples_run() -> None:
    examples = _blocks("python")
    assert len(examples) == 2  # sync and async
    for example in examples:
        namespace: dict[str, object] = {}
        exec(compile(example, str(README), "exec"), namespace)
        assert "store" in example and namespace


def test_readme_first_lines_are_install_and_test_commands() -> None:
    commands = _blocks("sh")[0].strip().splitlines()
    assert len(commands) == 2
    assert "pip install -e '.[dev]'" in commands[0] and commands[0].endswith("eventlog demo")
    assert "pytest" in commands[1]
    ci = (README.parent / ".ci" / "run").read_text("utf-8")
    assert commands[1].replace(".venv/bin/", "") in ci.replace('"$VENV"/bin/', "")
