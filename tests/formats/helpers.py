"""Shared paths and helpers of the format tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def lines_of(path: Path) -> list[bytes]:
    """A JSONL file's lines, without their line breaks."""
    return path.read_bytes().splitlines()


def parsed(path: Path) -> Any:
    """A JSON document, parsed."""
    return json.loads(path.read_text(encoding="utf-8"))
