"""How a Postgres connection is set up: URL checks and the settings of every pooled one."""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..errors import InvalidConfigError

__all__ = [
    "CONFIGURE_SQL",
    "CONNECTION_SETTINGS",
    "DISTRIBUTED_SETTINGS",
    "check_url",
    "configure_sql",
]


# Settings of every pooled connection. Every statement the store sends reads
# or writes one session through an index that leads with session_id, so a table
# scan is never the right plan. With scans off, a generic plan (one made without
# the parameters' values) is an index lookup of one session whatever the tables
# held when it was made, so the pool uses generic plans only: psycopg prepares a
# statement on its fifth use, and every later call skips the planner (planning
# was about 0.25 ms of a save_delta's server time). The one statement that
# needs its values to plan well (a write that stamps an `= ANY` list of seqs)
# runs in a transaction of its own with a custom plan. A test EXPLAINs each
# statement's plan, on an empty schema and on a long session.
CONNECTION_SETTINGS: Final = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off"}
# On distributed tables (Citus) the coordinator plans where a statement goes,
# and for most statements it can route one to its shard only from a plan made
# with the session id's value: a forced generic plan fails there with
# "could not create distributed plan" (0A000). `auto` keeps PostgreSQL's
# custom-plan fallback, which Citus relies on; the workers plan the shard
# queries themselves. Plain PostgreSQL keeps the generic plans.
# `citus.propagate_set_commands = local` passes the tenant's SET LOCAL on to the
# workers, where the row-level security policies run (`statements.tenant_setting`).
DISTRIBUTED_SETTINGS: Final = {
    **CONNECTION_SETTINGS,
    "plan_cache_mode": "auto",
    "citus.propagate_set_commands": "local",
}


def configure_sql(*, distributed: bool) -> str:
    """The one statement that sets a pooled connection up (plain or distributed tables)."""
    settings = DISTRIBUTED_SETTINGS if distributed else CONNECTION_SETTINGS
    return (
        "SELECT "
        + ", ".join(f"set_config('{name}', '{value}', false)" for name, value in settings.items())
        + ", set_config('synchronous_commit', CASE current_setting('synchronous_commit') "
        "WHEN 'off' THEN 'on' ELSE current_setting('synchronous_commit') END, false)"
    )


CONFIGURE_SQL: Final = configure_sql(distributed=False)


_NUMERIC_OPTIONS: Final = ("port", "connect_timeout", "keepalives_idle", "keepalives_count")


# Quoted text libpq's parse errors may keep: the URL punctuation it names.
_SHOWN_QUOTED: Final = frozenset({"=", "]", ":", "/"})


def _parse_reason(exc: psycopg.ProgrammingError) -> str:
    """libpq's reason for rejecting a URL, without any URL text it quotes.

    libpq quotes the offending token or the whole URI (after ``: ``), which may
    hold the password, and the quoted text may itself hold quotes. So the
    wording is kept up to the first quoted part that is not one of libpq's own
    punctuation marks, and nothing after it.
    """
    lines = str(exc).strip().splitlines()
    parts = (lines[0] if lines else "").split('"')
    kept = [parts[0]]
    for index in range(1, len(parts)):
        if index % 2 and (parts[index] not in _SHOWN_QUOTED or kept[-1].endswith(": ")):
            kept.append('"..."')
            break
        kept.append(f'"{parts[index]}"' if index % 2 else parts[index])
    reason = "".join(kept).removesuffix(': "..."').strip()
    return reason or "malformed"


def check_url(url: str) -> dict[str, Any]:
    """Parse a conninfo URL; a malformed one, or a non-numeric port or timeout, is an
    `InvalidConfigError` (libpq would only say so when connecting). No message
    carries any part of the URL (it may hold a password)."""
    # A lone surrogate (argv that was not UTF-8) cannot be handed to libpq; checked
    # without a handler, so no chained UnicodeEncodeError carries the URL.
    if any("\ud800" <= char <= "\udfff" for char in url):
        raise InvalidConfigError("the PostgreSQL URL is not valid UTF-8")
    reason = None
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = _parse_reason(exc)
    if reason is not None:
        # Raised outside the handler: no chained psycopg error holding the URL.
        raise InvalidConfigError(f"the PostgreSQL URL is not valid: {reason}")
    for name in _NUMERIC_OPTIONS:
        value = params.get(name)
        # A port may be a comma-separated list, one per host.
        if value is not None and not all(
            part.strip().lstrip("-").isdigit() for part in str(value).split(",")
        ):
            raise InvalidConfigError(f"the PostgreSQL URL's {name} must be a number")
    if "@" in str(params.get("host", "")):
        # An unencoded @ in the password ends it early: the rest became the host,
        # and libpq's "could not translate host name" would show that part.
        raise InvalidConfigError(
            "the PostgreSQL URL's host holds an @: percent-encode @ in a password as %40"
        )
    return params
