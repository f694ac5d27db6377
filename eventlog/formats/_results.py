"""What an import reports, and one session as a reader parsed it."""

from __future__ import annotations

import msgspec

from ..model import JSONObject

__all__ = ["ImportResult", "ParsedSession"]


class ImportResult(msgspec.Struct, frozen=True):
    """What `import_file` did.

    Attributes:
        session_id: the session written.
        entries: entries read from the file (after skipping bad lines).
        appended: entries written as new records.
        already_stored: entries the session already held with identical content.
        tombstoned: stored entries the import removed (Flue snapshots only).
        skipped_bad: bad lines skipped (only with ``skip_bad=True``).
        bad_lines: line numbers of the skipped lines (the first 1000).
        version: the session's version afterwards.
        leaf_id: the session's leaf afterwards.
    """

    session_id: str
    entries: int
    appended: int
    already_stored: int
    tombstoned: int
    skipped_bad: int
    bad_lines: tuple[int, ...]
    version: int
    leaf_id: str | None


class ParsedSession(msgspec.Struct):
    """What a reader concluded once every record was fed."""

    leaf_id: str | None
    metadata: JSONObject
    merge_metadata: bool = True
    """Merge into the stored metadata (line formats) or replace it whole (Flue)."""
    authoritative: bool = False
    """The file is a snapshot: stored entries it lacks are tombstoned (Flue)."""
