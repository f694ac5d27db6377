"""eventlog's logger. A library never configures logging: the application does.

Log lines carry ids, counts and timings only, never payloads or metadata.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ["logger"]


class _Logger:
    """A structlog logger on the stdlib `eventlog` logger, with a cheap level guard."""

    def __init__(self, name: str) -> None:
        self._stdlib = logging.getLogger(name)
        self._bound = structlog.wrap_logger(self._stdlib)

    def isEnabledFor(self, level: int) -> bool:
        return self._stdlib.isEnabledFor(level)

    def debug(self, event: str, **fields: Any) -> None:
        self._bound.debug(event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._bound.info(event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._bound.warning(event, **fields)


logger = _Logger("eventlog")
