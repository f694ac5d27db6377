"""What the sync and async runners do around every operation they run: log it, settle its error."""

from __future__ import annotations

import logging
import time
from typing import Any

from .._core.log import logger
from .._core.operations import Operation
from ..errors import EventlogError
from ..model import Page, SaveResult, SessionData

__all__ = ["log_operation", "settle_error"]


def settle_error(error: EventlogError, operation: Operation[Any]) -> None:
    """Make an error leaving `operation` fit to show: no driver context, its session named."""
    # A translated driver error keeps no driver exception as its context: a
    # Postgres DETAIL may hold row values.
    error.__context__ = None
    # Storage reads (a damaged row found while decoding) know the entry, not the call.
    if error.session_id is None and operation.session_id:
        error.session_id = operation.session_id


def log_operation(operation: Operation[Any], result: object, started: float) -> None:
    """One debug line per operation: ids, counts and timing, never payloads."""
    if not logger.isEnabledFor(logging.DEBUG):
        return
    fields: dict[str, Any] = {}
    if isinstance(result, SaveResult):
        fields = {
            "entries": len(result.appended),
            "skipped": len(result.skipped),
            "tombstoned": len(result.tombstoned),
            "version": result.version,
        }
    elif isinstance(result, SessionData):
        fields = {"entries": len(result.entries), "version": result.version}
    elif isinstance(result, list | Page):
        fields = {"entries": len(result) if isinstance(result, list) else len(result.items)}
    logger.debug(
        operation.name,
        session_id=operation.session_id,
        duration_ms=round((time.perf_counter() - started) * 1000, 3),
        **fields,
    )
