"""The `eventlog` command line: click commands, error lines, progress, the branch tree."""

from .commands import cli, main

__all__ = ["cli", "main"]
